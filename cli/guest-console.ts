/**
 * `vmchan attach --qmp ADDR --guest-console NAME`: a console on the guest
 * side of the port NAME of a real QEMU, through the guest's own qemu-ga
 * (guest-file-open / read / write / close on /dev/virtio-ports/NAME,
 * core/qga/guest-console.ts). Bytes from stdin go into the guest as if a
 * guest program wrote them on the port; what the host side sends the port
 * comes out on stdout. Ends on Ctrl-C, at the end of stdin (once what was
 * typed is in the guest), or when the console ends (its reason on stderr).
 */
import type { Readable } from 'node:stream';
import { AGENT_PORT_NAME } from '../core/qga/agent.js';
import { isQgaError } from '../core/qga/client.js';
import { addressText, agentAddress, connectAgent } from '../core/qga/connect.js';
import { GuestConsole, type GuestConsoleMode } from '../core/qga/guest-console.js';
import type { AttachedMachine } from '../core/qemu/attach.js';
import { UsageError } from './errors.js';

export const GUEST_CONSOLE_MODES: readonly GuestConsoleMode[] = ['r+', 'r', 'w'];

export interface ConsoleIo {
  input: Readable;
  output(bytes: Uint8Array): void;
  /** One line for people (stderr). */
  note(text: string): void;
}

export function checkConsoleMode(mode: string | undefined): GuestConsoleMode {
  const m = mode ?? 'r+';
  if (!(GUEST_CONSOLE_MODES as readonly string[]).includes(m))
    throw new UsageError(`--guest-console-mode expects r+, r or w, got '${m}'`);
  return m as GuestConsoleMode;
}

/** Run the console until `stop`, the end of input, or the console's end; a failure is an Error with one line. */
export async function runGuestConsole(
  machine: AttachedMachine,
  name: string,
  mode: GuestConsoleMode,
  io: ConsoleIo,
  stop: Promise<unknown>,
): Promise<void> {
  const topo = machine.topology();
  const port = topo.ports.find((p) => p.name === name);
  if (port === undefined)
    throw new Error(
      `QEMU has no port named ${name} (ports: ${topo.ports.map((p) => p.name ?? p.label).join(', ') || 'none'})`,
    );
  const agent = topo.ports.find((p) => p.name === AGENT_PORT_NAME && p.chardev !== null);
  if (agent === undefined)
    throw new Error(
      `the guest side of a real QEMU is reached through a guest agent, and this VM has no ${AGENT_PORT_NAME} port`,
    );
  if (agent.guestOpen === false)
    throw new Error(
      `no guest agent runs: the guest has not opened ${AGENT_PORT_NAME} (start qemu-ga in the guest)`,
    );
  const chardev = machine.chardev(agent.chardev!);
  if (chardev === undefined) throw new Error(`the agent's chardev ${agent.chardev} is gone`);
  const where = agentAddress(chardev);
  if (typeof where === 'string') throw new Error(where);
  const client = await connectAgent(where);
  if (isQgaError(client)) throw new Error(client.message);
  const path = `/dev/virtio-ports/${name}`;
  const con = await GuestConsole.open(client, path, { mode });
  if (isQgaError(con)) {
    client.close();
    throw new Error(`guest-file-open ${path}: ${con.message}`);
  }
  io.note(
    `guest console on ${path} (mode ${mode}) through qemu-ga at ${addressText(where)}; Ctrl-C to close`,
  );
  con.onData((b) => io.output(b));

  // Typed bytes wait here while the console's own queue is full (stdin paused meanwhile).
  const waiting: Uint8Array[] = [];
  let inputEnded = mode === 'r';
  let wakeInput = (): void => {};
  const inputDone = new Promise<void>((resolve) => (wakeInput = resolve));
  const pump = (): void => {
    while (waiting.length > 0) {
      const n = con.write(waiting[0]!);
      if (typeof n === 'string') break;
      waiting.shift();
    }
    if (waiting.length === 0) io.input.resume();
    else io.input.pause();
    if (inputEnded && waiting.length === 0 && con.pending === 0) wakeInput();
  };
  const pumpTimer = setInterval(pump, 20);
  if (mode !== 'r') {
    io.input.on('data', (b: Buffer) => {
      waiting.push(new Uint8Array(b));
      pump();
    });
    io.input.once('end', () => {
      inputEnded = true;
      pump();
    });
  }
  const ended = new Promise<string>((resolve) => con.onEnd(resolve));
  try {
    const why = await Promise.race([stop.then(() => null), inputDone.then(() => null), ended]);
    if (why !== null) throw new Error(`the guest console on ${path} ended: ${why}`);
  } finally {
    clearInterval(pumpTimer);
    io.input.pause();
    await con.close();
    client.close();
  }
}
