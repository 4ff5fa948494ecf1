/** Helpers for the API tests: a service with a screen that acks every batch, and a socket client. */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ApiService, type ApiServiceOptions } from '../../core/api/server/service.js';
import { until as waitUntil } from '../until.js';
import type {
  ApiEvent,
  Batch,
  CommandInput,
  PortSnapshot,
  Result,
  TopologySnapshot,
} from '../../core/api/contract/contract.js';

export interface Rig {
  service: ApiService;
  batches: Batch[];
  events: ApiEvent[];
  /** Run a command; throws with the engine's message when refused (for setup steps). */
  must<T = unknown>(command: CommandInput): Promise<T>;
  run(command: CommandInput): Promise<Result<unknown>>;
  topology(): Promise<TopologySnapshot>;
  /** Resolves once an event matching `test` has come through a batch. */
  waitEvent(test: (e: ApiEvent) => boolean, timeoutMs?: number): Promise<ApiEvent>;
  close(): Promise<void>;
}

export async function rig(options: Partial<ApiServiceOptions> = {}): Promise<Rig> {
  // Default captures go to the user's data directory: a temp one here, removed at close.
  const captureDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-test-captures-'));
  const service = await ApiService.create({
    face: 'web',
    lab: 'empty',
    sampleMs: 50,
    captureDir,
    ...options,
  });
  const batches: Batch[] = [];
  const events: ApiEvent[] = [];
  const waiters: { test: (e: ApiEvent) => boolean; resolve: (e: ApiEvent) => void }[] = [];
  const screen = service.attachScreen((b) => {
    batches.push(b);
    for (const e of b.events) {
      events.push(e);
      for (const w of [...waiters]) {
        if (w.test(e)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(e);
        }
      }
    }
    // A screen that keeps up: ack on the next turn, as requestAnimationFrame would.
    setImmediate(() => screen.ack(b.seq));
  });
  const run = (command: CommandInput): Promise<Result<unknown>> => service.execute(command);
  return {
    service,
    batches,
    events,
    run,
    must: async <T>(command: CommandInput): Promise<T> => {
      const r = await run(command);
      if (!r.ok) throw new Error(`${command.cmd}: ${r.error.kind}: ${r.error.message}`);
      return r.value as T;
    },
    topology: async () => {
      const r = await run({ cmd: 'getTopology' });
      if (!r.ok) throw new Error(r.error.message);
      return r.value as TopologySnapshot;
    },
    waitEvent: (test, timeoutMs = 5000) => {
      const seen = events.find(test);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const w = { test, resolve };
        waiters.push(w);
        setTimeout(() => {
          if (waiters.includes(w)) reject(new Error('event did not come'));
        }, timeoutMs).unref();
      });
    },
    close: async () => {
      screen.close();
      await service.close();
      fs.rmSync(captureDir, { recursive: true, force: true });
    },
  };
}

/** Poll `check` until it holds (or fail after `timeoutMs`). */
export async function until<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 5000,
): Promise<T> {
  return (await waitUntil(check, 'a condition of the lab', timeoutMs)) as T;
}

/** A host application on a unix socket, like socat: keeps what it reads, notes the close. */
export async function socketClient(path: string): Promise<{
  socket: net.Socket;
  received: () => Buffer;
  closed: () => boolean;
  close: () => void;
}> {
  const socket = net.createConnection({ path });
  const chunks: Buffer[] = [];
  let closed = false;
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('close', () => (closed = true));
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return {
    socket,
    received: () => Buffer.concat(chunks),
    closed: () => closed,
    close: () => socket.destroy(),
  };
}

/** createDevice vser0, then hot-plug a virtserialport `name` on a new chardev `chardev` (a unix socket unless told). */
export async function plugOnNewChardev(
  lab: Rig,
  port: { name: string; id?: string; chardev: string; backend?: 'unix' | 'ringbuf' },
): Promise<PortSnapshot> {
  await lab.must({ cmd: 'createDevice', device: { id: 'vser0' } });
  return lab.must<PortSnapshot>({
    cmd: 'hotplugPort',
    port: {
      driver: 'virtserialport',
      name: port.name,
      ...(port.id === undefined ? {} : { id: port.id }),
      newChardev: { id: port.chardev, backend: { kind: port.backend ?? 'unix' } },
    },
  });
}
