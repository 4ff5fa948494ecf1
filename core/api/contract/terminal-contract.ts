/**
 * The terminals' part of the contract (spread into contract.ts): terminal
 * sessions on either side of a port and the HMP monitor console, their
 * commands and answers, and the output they stream to a screen inside the
 * batches.
 *
 * A session is one program at one end of a channel:
 * - `guest`: a guest program holding the port's node open (/dev/hvcK for a
 *   console, /dev/virtio-ports/NAME or /dev/vportDpN otherwise), reading and
 *   writing through the guest's system calls: opening it sends PORT_OPEN 1,
 *   closing the terminal PORT_OPEN 0; a serial port already open in the
 *   guest answers EBUSY, as Linux does;
 * - `host`: the host application on the port's chardev, a client of a
 *   server socket as socat would be (or the peer of an in-memory chardev);
 * - `monitor`: QEMU's human monitor (HMP) for the app's machine.
 *
 * Output travels in batches (`Batch.terminals`): per session and batch the
 * newest bytes are kept up to a bound and what was left out is counted.
 * Pure data and zod schemas: the renderer imports it through contract.ts.
 */
import { z } from 'zod';

const Nr = z.number().int().min(0).max(0xfffffffe);
const PortRef = z.object({ device: z.string().min(1).max(128), nr: Nr });

/** Bytes of output a screen gets per session per batch at most (the newest are kept). */
export const TERMINAL_BATCH_BYTES = 64 * 1024;
/** Typed bytes waiting for a session's program to take them, at most. */
export const TERMINAL_INPUT_QUEUE = 64 * 1024;

export const TerminalSideSchema = z.enum(['host', 'guest']);
export type TerminalSide = z.infer<typeof TerminalSideSchema>;

export const TerminalSessionSchema = z.object({
  /** `t1`, `t2`, ... (unique for the service's life). */
  id: z.string(),
  kind: z.enum(['host', 'guest', 'monitor']),
  /** The port (null for the monitor). */
  port: PortRef.nullable(),
  /** What a tab says: `test1 · guest`, `HMP monitor`. */
  title: z.string(),
  /** What the program holds: `/dev/virtio-ports/test1`, `unix:/run/.../test1`, `memory:mon0`. */
  path: z.string(),
  /** Still running (false once the port went away, the host hung up, `quit`...). */
  open: z.boolean(),
});
export type TerminalSession = z.infer<typeof TerminalSessionSchema>;

/** One session's output in one batch. */
export const TerminalOutputSchema = z.object({
  session: z.string(),
  /** The bytes, base64. */
  data: z.string(),
  /** Bytes left out of this batch because the screen fell behind (the oldest go first). */
  dropped: z.number().int().min(0),
  /** Set when the session ended: why, in one line. */
  ended: z.string().nullable(),
});
export type TerminalOutput = z.infer<typeof TerminalOutputSchema>;

export const TerminalCommandSchemas = [
  /** A terminal on one side of a port; answers the session (its output comes in batches). */
  z.object({ cmd: z.literal('openTerminal'), port: PortRef, side: TerminalSideSchema }),
  /** An HMP monitor console for the app's machine (info chardev, device_add, ...). */
  z.object({ cmd: z.literal('openMonitor') }),
  /** Typed bytes (UTF-8 text, or base64): queued for the session's program, never waited for. */
  z.object({
    cmd: z.literal('terminalInput'),
    session: z.string().min(1).max(64),
    data: z.string().max(TERMINAL_INPUT_QUEUE),
    base64: z.boolean().optional(),
  }),
  /** End the session: the guest program closes the port, the host client hangs up. */
  z.object({ cmd: z.literal('closeTerminal'), session: z.string().min(1).max(64) }),
  /** The sessions open now (a screen that reloads takes them up again). */
  z.object({ cmd: z.literal('listTerminals') }),
] as const;

export const TerminalResults = {
  openTerminal: TerminalSessionSchema,
  openMonitor: TerminalSessionSchema,
  terminalInput: z.object({ queued: z.number().int() }),
  closeTerminal: z.object({}),
  listTerminals: z.object({ sessions: z.array(TerminalSessionSchema) }),
} as const;
