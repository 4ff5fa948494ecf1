/**
 * mux=on: one backend shared by up to four frontends (H1), as QEMU's
 * chardev/char-mux.c.
 *
 * Each frontend attaches to its own MuxFrontend (a ChardevEndpoint). Input
 * from the backend goes to the frontend that has the focus; ctrl-a c moves
 * the focus to the next attached frontend, ctrl-a ctrl-a sends one ctrl-a,
 * ctrl-a h (or ?) prints the escape help to the backend. Other escapes are
 * swallowed as QEMU swallows them; their QEMU actions (x: quit, s: commit
 * disks, b: break, t: timestamps) are not modelled, and x is reported
 * through onNotice. Output from every frontend goes to the backend, with
 * the backend's backpressure and write watches. 'opened' / 'closed' go to
 * every attached frontend.
 *
 * Input a frontend cannot take yet waits in a small per-frontend buffer
 * (QEMU: 32 bytes); while the focused one's is full the mux reads nothing,
 * so escapes still work while the focused frontend is slow, up to that
 * buffer.
 */
import { MAX_MUX_FRONTENDS } from './limits.js';
import type { ChardevEndpoint, ChardevEvent, ChardevHandlers } from '../serial/endpoint.js';
import type { PostTask } from '../virtio/device.js';
import {
  type BackendEndpoint,
  type ChardevInfo,
  type Closeable,
  type HangUpResult,
  type ReadyOutcome,
} from './backend-endpoint.js';
import { ByteQueue } from './byte-queue.js';
import { chardevError, type ChardevError } from './chardev-error.js';
import type { ChardevCounters } from './counters.js';

/** ctrl-a, QEMU's default term_escape_char. */
export const MUX_ESCAPE = 0x01;
/** Input held per frontend (QEMU: MUX_BUFFER_SIZE). */
export const MUX_BUFFER_SIZE = 32;

const HELP =
  '\n\r' +
  [
    'C-a h    print this help',
    'C-a x    exit emulator',
    'C-a s    save disk data back to file (if -snapshot)',
    'C-a t    toggle console timestamps',
    'C-a b    send break (magic sysrq)',
    'C-a c    switch between console and monitor',
    'C-a C-a  sends C-a',
  ]
    .map((l) => `${l}\n\r`)
    .join('');

export interface MuxStats {
  /** Bytes consumed as escape sequences (ctrl-a and the key after it). */
  escapeBytes: number;
  /** Focus changes made with ctrl-a c. */
  focusSwitches: number;
}

/** One frontend's view of a mux chardev. */
export class MuxFrontend implements ChardevEndpoint {
  /** @internal */ handlers: ChardevHandlers | null = null;
  /** @internal */ readonly pending = new ByteQueue();
  /** @internal the last event this frontend was given, so it never hears 'opened' twice in a row */
  lastEvent: ChardevEvent | null = null;
  private isFrontendOpen = false;
  private watchCancels: (() => void)[] = [];

  /** @internal created by MuxChardev */
  constructor(
    private readonly mux: MuxChardev,
    /** Position 0..3, QEMU's mux tag. */
    readonly index: number,
  ) {}

  get id(): string {
    return this.mux.id;
  }

  get connected(): boolean {
    return this.mux.base.connected;
  }

  get attached(): boolean {
    return this.handlers !== null;
  }

  get frontendOpen(): boolean {
    return this.isFrontendOpen;
  }

  attach(handlers: ChardevHandlers): boolean {
    if (this.handlers !== null) return false;
    this.handlers = handlers;
    this.mux.frontendAttached(this);
    return true;
  }

  detach(): void {
    this.handlers = null;
    this.lastEvent = null;
    this.isFrontendOpen = false;
    for (const c of this.watchCancels) c();
    this.watchCancels = [];
    this.mux.frontendDetached(this);
  }

  write(bytes: Uint8Array, handover = false, release?: (bytes: Uint8Array) => void): number {
    return this.mux.base.write(bytes, handover, release);
  }

  addWriteWatch(callback: () => void): () => void {
    const cancel = this.mux.base.addWriteWatch(() => {
      this.watchCancels = this.watchCancels.filter((c) => c !== cancel);
      callback();
    });
    this.watchCancels.push(cancel);
    return () => {
      this.watchCancels = this.watchCancels.filter((c) => c !== cancel);
      cancel();
    };
  }

  acceptInput(): void {
    this.mux.frontendCanTakeMore(this);
  }

  setFrontendOpen(open: boolean): void {
    this.isFrontendOpen = open;
    this.mux.frontendOpenChanged();
  }

  describe(): string {
    return 'mux';
  }
}

export class MuxChardev implements ChardevEndpoint, Closeable {
  readonly kind: string;
  readonly frontends: readonly MuxFrontend[];
  readonly stats: MuxStats = { escapeBytes: 0, focusSwitches: 0 };
  private focusIndex = 0;
  private gotEscape = false;
  private flushPosted = new Set<MuxFrontend>();

  private constructor(
    readonly base: BackendEndpoint,
    private readonly post: PostTask,
    private readonly notice: (line: string) => void,
  ) {
    this.kind = base.kind;
    const slots: MuxFrontend[] = [];
    for (let i = 0; i < MAX_MUX_FRONTENDS; i++) slots.push(new MuxFrontend(this, i));
    this.frontends = slots;
    base.attach({
      canRead: () => this.canRead(),
      read: (bytes) => this.read(bytes),
      event: (event) => this.broadcast(event),
    });
  }

  /** Put a mux in front of `base` (which it attaches to as its only frontend). */
  static over(
    base: BackendEndpoint,
    post: PostTask,
    onNotice?: (line: string) => void,
  ): MuxChardev {
    return new MuxChardev(base, post, onNotice ?? (() => {}));
  }

  get id(): string {
    return this.base.id;
  }

  get counters(): ChardevCounters {
    return this.base.counters;
  }

  get ready(): Promise<ReadyOutcome> {
    return this.base.ready;
  }

  /** Index of the frontend that receives input. */
  get focus(): number {
    return this.focusIndex;
  }

  /** The lowest free frontend (QEMU's mux_chr_attach_frontend), or an error when all four are taken. */
  freeFrontend(): MuxFrontend | ChardevError {
    const free = this.frontends.find((f) => !f.attached);
    if (free !== undefined) return free;
    return chardevError(
      'Busy',
      `too many uses of multiplexed chardev '${this.id}' (maximum is ${MAX_MUX_FRONTENDS})`,
      this.id,
    );
  }

  // As a ChardevEndpoint the mux chardev is its first frontend, so code that
  // treats every chardev alike still works; the others are in `frontends`.
  get connected(): boolean {
    return this.base.connected;
  }
  get attached(): boolean {
    return this.frontends[0]!.attached;
  }
  get frontendOpen(): boolean {
    return this.frontends[0]!.frontendOpen;
  }
  attach(handlers: ChardevHandlers): boolean {
    return this.frontends[0]!.attach(handlers);
  }
  detach(): void {
    this.frontends[0]!.detach();
  }
  write(bytes: Uint8Array, handover = false, release?: (bytes: Uint8Array) => void): number {
    return this.frontends[0]!.write(bytes, handover, release);
  }
  addWriteWatch(callback: () => void): () => void {
    return this.frontends[0]!.addWriteWatch(callback);
  }
  acceptInput(): void {
    this.frontends[0]!.acceptInput();
  }
  setFrontendOpen(open: boolean): void {
    this.frontends[0]!.setFrontendOpen(open);
  }

  describe(): string {
    return 'mux';
  }

  /** query-chardev lists the mux (`ID: filename=mux`) and its base (`ID-base`). */
  info(): ChardevInfo[] {
    return [
      {
        label: this.id,
        filename: 'mux',
        'frontend-open': this.frontends.some((f) => f.frontendOpen),
      },
      { ...this.base.info(), label: `${this.id}-base` },
    ];
  }

  /** Hang up the base's host peer (every frontend gets 'closed'): see BackendEndpoint.hangUp. */
  hangUp(): HangUpResult {
    return this.base.hangUp();
  }

  close(): Promise<void> {
    return this.base.close();
  }

  // --------------------------------------------------- from MuxFrontend

  /** @internal */
  frontendAttached(f: MuxFrontend): void {
    if (!this.frontends[this.focusIndex]!.attached) this.focusIndex = f.index;
    if (this.base.connected) this.postEvent(f, 'opened');
    this.base.acceptInput();
  }

  /** @internal */
  frontendDetached(f: MuxFrontend): void {
    if (f.index === this.focusIndex) {
      const next = this.nextAttached(f.index);
      if (next !== null) this.focusIndex = next;
    }
  }

  /** @internal the frontend posted more receive room */
  frontendCanTakeMore(f: MuxFrontend): void {
    if (this.flushPosted.has(f)) return;
    this.flushPosted.add(f);
    this.post('backend', `chardev ${this.id}: mux flush ${f.index}`, () => {
      this.flushPosted.delete(f);
      this.flush(f);
      this.base.acceptInput();
    });
  }

  /** @internal */
  frontendOpenChanged(): void {
    this.base.setFrontendOpen(this.frontends.some((f) => f.frontendOpen));
  }

  // ------------------------------------------- the base's handlers (in tasks)

  private canRead(): number {
    const f = this.frontends[this.focusIndex]!;
    const room = MUX_BUFFER_SIZE - f.pending.length;
    if (room <= 0) return 0;
    const direct = f.pending.length === 0 && f.handlers !== null ? f.handlers.canRead() : 0;
    return Math.max(room, direct);
  }

  private read(bytes: Uint8Array): void {
    let runStart = 0;
    const flushRun = (end: number): void => {
      if (end > runStart)
        this.deliver(this.frontends[this.focusIndex]!, bytes.subarray(runStart, end));
    };
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i]!;
      if (this.gotEscape) {
        this.gotEscape = false;
        if (b === MUX_ESCAPE) {
          // ctrl-a ctrl-a: one literal ctrl-a; it starts the next run of plain bytes
          this.stats.escapeBytes++;
          runStart = i;
          continue;
        }
        this.stats.escapeBytes += 2;
        runStart = i + 1;
        this.escape(b);
      } else if (b === MUX_ESCAPE) {
        flushRun(i);
        this.gotEscape = true;
        runStart = i + 1;
      }
    }
    if (!this.gotEscape) flushRun(bytes.length);
  }

  private escape(key: number): void {
    switch (String.fromCharCode(key)) {
      case 'c': {
        const next = this.nextAttached(this.focusIndex);
        if (next !== null && next !== this.focusIndex) {
          this.focusIndex = next;
          this.stats.focusSwitches++;
          this.flush(this.frontends[next]!);
        }
        break;
      }
      case 'h':
      case '?':
        this.base.write(new TextEncoder().encode(HELP));
        break;
      case 'x':
        this.notice(`chardev ${this.id}: C-a x (exit emulator) is not modelled; ignored`);
        break;
      default:
        break; // s, b, t and unknown keys: swallowed, as QEMU does
    }
  }

  /** Give bytes to a frontend now if it can take them, else hold them. */
  private deliver(f: MuxFrontend, bytes: Uint8Array): void {
    if (f.pending.length === 0 && f.handlers !== null) {
      const n = Math.min(bytes.length, f.handlers.canRead());
      if (n > 0) {
        f.handlers.read(bytes.subarray(0, n));
        bytes = bytes.subarray(n);
      }
    }
    if (bytes.length > 0) f.pending.push(bytes.slice());
  }

  private flush(f: MuxFrontend): void {
    while (f.pending.length > 0 && f.handlers !== null) {
      const n = f.handlers.canRead();
      if (n <= 0) return;
      f.handlers.read(f.pending.take(n));
    }
  }

  private broadcast(event: ChardevEvent): void {
    for (const f of this.frontends) this.tell(f, event);
  }

  private postEvent(f: MuxFrontend, event: ChardevEvent): void {
    const target = f.handlers;
    this.post('backend', `chardev ${this.id}: ${event} (mux ${f.index})`, () => {
      if (f.handlers === target) this.tell(f, event);
    });
  }

  /** An event to one frontend, unless it already heard it last (attach and the base can both say 'opened'). */
  private tell(f: MuxFrontend, event: ChardevEvent): void {
    if (f.handlers === null || f.lastEvent === event) return;
    f.lastEvent = event;
    f.handlers.event(event);
  }

  /** The next attached frontend after `from`, wrapping (QEMU: find_next_bit over mux_bitset). */
  private nextAttached(from: number): number | null {
    for (let step = 1; step <= this.frontends.length; step++) {
      const i = (from + step) % this.frontends.length;
      if (this.frontends[i]!.attached) return i;
    }
    return null;
  }
}
