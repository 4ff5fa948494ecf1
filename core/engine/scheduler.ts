/**
 * The engine's explicit task queue (architecture: "Scheduler").
 *
 * Everything that happens in an emulated machine is a task posted here: guest
 * work (a system call, an interrupt handler, a woken waiter), device work
 * after a kick (one descriptor chain per task) and backend I/O completions
 * (one chunk of host bytes per task). Tasks run strictly in the order they
 * were posted, so the same inputs give the same sequence of operations.
 *
 * Two modes:
 * - free-run: the queue drains by itself and yields to the Node event loop
 *   (setImmediate) after every `batchSize` tasks, so sockets, timers and the
 *   UI keep running during a long transfer;
 * - step: nothing runs until `step()` is called, which runs exactly one task
 *   (one ring operation) so a person can watch one descriptor travel.
 *
 * Stepping one queue: a task may carry the virtqueue it works on (device
 * work after a kick, the guest's interrupt for that queue). `step(match)`
 * runs the oldest waiting task that matches and leaves the others where
 * they are; `hold(queue)` free-runs everything but that queue's tasks,
 * which wait for a step (the queue in view is stepped while the others
 * keep running). Any `setMode` ends a hold.
 *
 * In free-run, work whose turn would come at once anyway (the queue is
 * empty) may run without the hop through it (`post.mayRunNow`): a guest
 * system call runs when the program makes it, a backend hands its next chunk
 * in the same task. The order of operations stays the one posting gives. Such work still counts
 * as a task against the batch budget, so the event loop gets its turn just
 * as often; in step mode nothing skips the queue.
 *
 * A task that throws is a bug in the engine, not a guest error (guest errors
 * are fault values); it is reported through `onError` and the queue goes on.
 */
import type { PostTask, TaskInfo, TaskKind, TaskQueue } from '../virtio/device.js';
import { Fifo } from './fifo.js';

export type { TaskInfo, TaskQueue };
/** Which waiting tasks a step may run, or a hold keeps waiting. */
export type TaskMatch = (task: TaskInfo) => boolean;
export type SchedulerMode = 'free-run' | 'step';

interface Task extends TaskInfo {
  run: () => void;
}

interface TaskListener {
  hear: (task: TaskInfo) => void;
  /** Does it want the next task now? (Absent: always.) */
  wanted?: () => boolean;
}

export interface SchedulerOptions {
  mode?: SchedulerMode;
  /** Tasks per free-run batch before yielding to the event loop. */
  batchSize?: number;
  /** A task threw (an engine bug): the default writes one line to stderr. */
  onError?: (task: TaskInfo, error: unknown) => void;
}

export interface SchedulerStats {
  posted: number;
  executed: number;
  /** Times free-run yielded to the event loop (after a full batch). */
  yields: number;
  /** Of `executed`, work that ran without the hop through the queue (mayRunNow, mayContinue). */
  ranNow: number;
  byKind: Record<TaskKind, number>;
}

export class Scheduler {
  /** Waiting tasks, oldest first (a ring: see fifo.ts for why not an array). */
  private readonly queue = new Fifo<Task>();
  private seq = 0;
  private drainScheduled = false;
  /** Tasks run since the queue last yielded to the event loop. */
  private sinceYield = 0;
  private idleWaiters: (() => void)[] = [];
  private taskListeners: TaskListener[] = [];
  private readonly batchSize: number;
  private readonly onError: (task: TaskInfo, error: unknown) => void;
  private currentMode: SchedulerMode;
  /** Free-run but these: they wait for a step (null: no hold). */
  private held: TaskMatch | null = null;
  /** The queue a hold keeps waiting (null: no hold). */
  heldQueue: TaskQueue | null = null;
  /** A task's run() is on the stack (admitNow never nests one task in another). */
  private inTask = false;
  readonly stats: SchedulerStats = {
    posted: 0,
    executed: 0,
    yields: 0,
    ranNow: 0,
    byKind: { guest: 0, device: 0, backend: 0 },
  };

  constructor(options: SchedulerOptions = {}) {
    this.currentMode = options.mode ?? 'free-run';
    this.batchSize = Math.max(1, options.batchSize ?? 256);
    this.onError =
      options.onError ??
      ((task, error) => {
        const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
        process.stderr.write(`vmchan: task ${task.seq} (${task.label}) failed: ${text}\n`);
      });
  }

  /** Post a task; in free-run mode it runs soon, in step mode at a later step(). */
  readonly post: PostTask = Object.assign(
    (kind: TaskKind, label: string, run: () => void, queue?: TaskQueue): void => {
      this.queue.push(
        queue === undefined
          ? { seq: ++this.seq, kind, label, run }
          : { seq: ++this.seq, kind, label, run, queue },
      );
      this.stats.posted++;
      if (this.currentMode === 'free-run') this.scheduleDrain();
    },
    {
      mayRunNow: (kind: TaskKind, label: string): boolean => this.admitNow(kind, label, false),
      mayContinue: (kind: TaskKind, label: string): boolean => this.admitNow(kind, label, true),
      freeRunning: (): boolean => this.currentMode === 'free-run' && this.held === null,
    },
  );

  /**
   * Free-run with budget left and nothing queued: the caller runs its work now, counted here
   * as a task posted and run (the listeners hear of it as of any task).
   * `continuing` is a running task doing one more piece of its own work;
   * otherwise the caller must be outside every task, so no task ever runs
   * nested inside another (a guest call made from a task's callback waits
   * its turn in the queue). Never during a hold: work run now carries no
   * queue, so it could be the held queue's.
   */
  private admitNow(kind: TaskKind, label: string, continuing: boolean): boolean {
    if (this.currentMode !== 'free-run' || this.sinceYield >= this.batchSize) return false;
    if (this.held !== null) return false;
    // Only when nothing waits: the work then runs exactly where posting it
    // would have run it, so every task sees the state it always saw.
    if (this.pending > 0 || this.inTask !== continuing) return false;
    this.sinceYield++;
    const seq = ++this.seq;
    this.stats.posted++;
    this.stats.executed++;
    this.stats.ranNow++;
    countKind(this.stats.byKind, kind);
    if (this.taskListeners.length > 0) this.tell(seq, kind, label, undefined);
    return true;
  }

  get mode(): SchedulerMode {
    return this.currentMode;
  }

  setMode(mode: SchedulerMode): void {
    this.currentMode = mode;
    this.held = null;
    this.heldQueue = null;
    if (mode === 'free-run') this.scheduleDrain();
  }

  /**
   * Free-run every task but the work of one virtqueue (tasks tagged with
   * it): that waits for `step(match)`. `setMode` ends it.
   */
  hold(queue: TaskQueue): void {
    const q = { ...queue };
    this.currentMode = 'free-run';
    this.heldQueue = q;
    this.held = (t) => t.queue?.device === q.device && t.queue.queue === q.queue;
    this.scheduleDrain();
  }

  /** Is a hold on (free-run with one queue's work waiting for steps)? */
  get holding(): boolean {
    return this.held !== null;
  }

  /** Tasks waiting to run. */
  get pending(): number {
    return this.queue.length;
  }

  /** The tasks waiting, oldest first (for the step-mode view). */
  peek(limit = 20): TaskInfo[] {
    const out: TaskInfo[] = [];
    for (let i = 0; i < this.queue.length && out.length < limit; i++) {
      out.push(info(this.queue.at(i)!));
    }
    return out;
  }

  /**
   * Called with every task just before it runs. `wanted`, when given, says
   * whether the listener wants tasks at the moment: while no listener does,
   * no task's info is made (a transfer runs a few tasks per 4 KiB).
   */
  onTask(listener: (task: TaskInfo) => void, wanted?: () => boolean): () => void {
    const entry: TaskListener =
      wanted === undefined ? { hear: listener } : { hear: listener, wanted };
    this.taskListeners = [...this.taskListeners, entry];
    return () => {
      this.taskListeners = this.taskListeners.filter((l) => l !== entry);
    };
  }

  /** The listeners that want it hear of a task (its info made once, for them only). */
  private tell(seq: number, kind: TaskKind, label: string, queue: TaskQueue | undefined): void {
    let seen: TaskInfo | null = null;
    for (const l of this.taskListeners) {
      if (l.wanted !== undefined && !l.wanted()) continue;
      seen ??=
        queue === undefined ? { seq, kind, label } : { seq, kind, label, queue: { ...queue } };
      l.hear(seen);
    }
  }

  /**
   * Run exactly one task now (in either mode): the oldest, or the oldest
   * that `match` picks (the others keep their places). Null when none waits.
   */
  step(match?: TaskMatch): TaskInfo | null {
    const task = match === undefined ? this.take() : this.takeWhere(match);
    if (task === undefined) {
      if (this.pending === 0) this.wakeIdle();
      return null;
    }
    this.runTask(task);
    if (this.pending === 0) this.wakeIdle();
    return info(task);
  }

  /** Run up to `count` tasks; returns how many ran. */
  steps(count: number): number {
    let n = 0;
    while (n < count && this.step() !== null) n++;
    return n;
  }

  /**
   * Resolves when the queue is empty. In free-run mode that is after the
   * work posted so far (and whatever it posts in turn) has run; in step mode
   * only steps make progress.
   */
  idle(): Promise<void> {
    if (this.pending === 0 && !this.drainScheduled) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Free-run until nothing is left to do: the queue is empty and the
   * promise continuations it woke (guest programs awaiting a read, say)
   * have had their turn without posting more work.
   */
  async settle(): Promise<void> {
    for (;;) {
      await this.idle();
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.pending === 0) return;
    }
  }

  private take(): Task | undefined {
    return this.queue.shift();
  }

  /** The oldest waiting task `match` picks, taken out of the queue (the rest keep their order). */
  private takeWhere(match: TaskMatch): Task | undefined {
    for (let i = 0; i < this.queue.length; i++) {
      if (match(this.queue.at(i)!)) return this.queue.removeAt(i);
    }
    return undefined;
  }

  private runTask(task: Task): void {
    this.stats.executed++;
    countKind(this.stats.byKind, task.kind);
    if (this.taskListeners.length > 0) this.tell(task.seq, task.kind, task.label, task.queue);
    const outer = this.inTask;
    this.inTask = true;
    try {
      task.run();
    } catch (error) {
      this.onError(info(task), error);
    } finally {
      this.inTask = outer;
    }
  }

  /**
   * Drain soon. While the current batch still has budget, go on in a
   * microtask: a guest program awaiting each read posts its next system call
   * from a promise continuation, and a macrotask hop per call would dominate
   * a transfer. Once `batchSize` tasks ran, yield for real (setImmediate).
   */
  private scheduleDrain(): void {
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    if (this.sinceYield < this.batchSize) {
      queueMicrotask(this.drain);
    } else {
      this.sinceYield = 0;
      setImmediate(this.yieldedDrain);
    }
  }

  private readonly yieldedDrain = (): void => {
    this.stats.yields++;
    this.drain();
  };

  private readonly drain = (): void => {
    this.drainScheduled = false;
    if (this.currentMode !== 'free-run') return;
    let runnable = true;
    while (this.sinceYield < this.batchSize) {
      const held = this.held;
      const task = held === null ? this.take() : this.takeWhere((t) => !held(t));
      if (task === undefined) {
        runnable = false;
        break;
      }
      this.sinceYield++;
      this.runTask(task);
      if (this.currentMode !== 'free-run') break;
    }
    if (this.pending > 0) {
      // Only held tasks left: they wait for steps; a new post drains again.
      if (this.currentMode === 'free-run' && runnable) this.scheduleDrain();
    } else {
      this.wakeIdle();
    }
  };

  private wakeIdle(): void {
    if (this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}

/**
 * byKind[kind]++ with a named property per kind: a store keyed by a string
 * that varies from call to call goes through V8's generic keyed path, and
 * it runs for every task.
 */
function countKind(byKind: Record<TaskKind, number>, kind: TaskKind): void {
  switch (kind) {
    case 'guest':
      byKind.guest++;
      return;
    case 'device':
      byKind.device++;
      return;
    case 'backend':
      byKind.backend++;
      return;
  }
}

/** What a listener or the step log sees of a task. */
function info(t: TaskInfo): TaskInfo {
  return t.queue === undefined
    ? { seq: t.seq, kind: t.kind, label: t.label }
    : { seq: t.seq, kind: t.kind, label: t.label, queue: { ...t.queue } };
}
