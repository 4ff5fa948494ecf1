/**
 * Shared pieces of the capture tests: the real tshark (never mocked), a
 * scenario capture with several ports, and a way to run the writer in a
 * child process (compiled from the TypeScript sources on the fly).
 */
import { transpileTo } from '../monitor/child-modules.js';
import { describe, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Capture } from '../../core/capture/record.js';
import { PcapngWriter } from '../../core/capture/pcapng-writer.js';
import {
  CONTROL_EVENT,
  controlRecord,
  dataRecord,
  encodeControl,
  eventRecord,
  ringRecord,
  type CaptureInterface,
  type CaptureRecord,
  type Direction,
} from '../../core/capture/record.js';

export const ROOT = path.join(import.meta.dirname, '..', '..');
export const LUA = path.join(ROOT, 'assets', 'wireshark', 'vmchan.lua');
export const TSHARK_MISSING = 'tshark not found: apt-get install tshark';

function findTshark(): boolean {
  const r = spawnSync('tshark', ['--version'], { encoding: 'utf8' });
  return r.status === 0;
}
export const hasTshark = findTshark();

/**
 * A describe block that needs tshark: runs when it is installed; under
 * CI=true a missing tshark fails the run; elsewhere the block is skipped
 * with the message.
 */
export function describeWithTshark(name: string, body: () => void): void {
  if (hasTshark) describe(name, body);
  else if (process.env.CI === 'true') {
    describe(name, () => {
      it('needs tshark', () => {
        throw new Error(TSHARK_MISSING);
      });
    });
  } else describe.skip(`${name} (${TSHARK_MISSING})`, body);
}

/** Run tshark; returns stdout (stderr is returned separately for the Lua checks). */
export function tshark(args: string[]): { stdout: string; stderr: string; status: number } {
  const r = spawnSync('tshark', args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status ?? -1 };
}

/** `tshark -T fields` rows, one array of columns per frame. */
export function tsharkFields(file: string, fields: string[], extra: string[] = []): string[][] {
  const args = ['-r', file, ...extra, '-T', 'fields', '-E', 'separator=/t', '-E', 'quote=n'];
  for (const f of fields) args.push('-e', f);
  const out = execFileSync('tshark', args, {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const lines = out.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.map((l) => l.split('\t'));
}

const tempDirs: string[] = [];

/** Remove the directories tempDir made (each test file calls it from afterAll). */
export function removeTempDirs(): void {
  for (const d of tempDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

/** A fresh temporary directory; removeTempDirs() removes it. */
export function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `vmchan-${prefix}-`));
  tempDirs.push(d);
  return d;
}

export const T0 = 1_700_000_000_123_456_789n;

export interface Scenario {
  file: string;
  /** Records the capture accepted, in file order. */
  written: CaptureRecord[];
  /** The interface name tshark should show for each written record. */
  interfaceNames: string[];
  interfaces: CaptureInterface[];
}

const vser0 = { device: 'vser0', deviceIndex: 0 };
const vser1 = { device: 'vser1', deviceIndex: 1 };
export const PORTS: Record<string, CaptureInterface> = {
  console: { ...vser0, port: 0, kind: 'virtconsole', chardev: { id: 'con0', backend: 'pty' } },
  test1: {
    ...vser0,
    port: 1,
    kind: 'virtserialport',
    name: 'test1',
    chardev: { id: 'c1', backend: 'unix:/tmp/vmchan-c1.sock,server=on,wait=off' },
  },
  unnamed: {
    ...vser0,
    port: 2,
    kind: 'virtserialport',
    chardev: { id: 'c2', backend: 'tcp:127.0.0.1:4555,server=on' },
  },
  qga: {
    ...vser1,
    port: 1,
    kind: 'virtserialport',
    name: 'org.qemu.guest_agent.0',
    chardev: { id: 'qga0', backend: 'unix:/tmp/qga.sock,server=on' },
  },
  hp1: { ...vser0, port: 3, kind: 'virtserialport', name: 'hp1' },
};

export const BINARY = Uint8Array.from({ length: 256 }, (_, i) => i);

/**
 * A capture with two devices, four ports at start and one hot-plugged in
 * the middle, control messages, events with text, data both ways, a port
 * switched off and on again, and a ring operation.
 */
export function writeScenario(file: string): Scenario {
  const w = PcapngWriter.create(file, { os: 'Linux test', hardware: 'x86_64' });
  if (!(w instanceof PcapngWriter)) throw new Error(String(w));
  const capture = new Capture();
  capture.attach(w);
  capture.setAll(true);
  const written: CaptureRecord[] = [];
  let t = T0;
  const tick = () => (t += 1_000_123n);
  const put = (r: CaptureRecord) => {
    if (capture.write(r)) written.push(r);
  };
  const ctl = (
    device: string,
    dir: Direction,
    id: number,
    event: number,
    value: number,
    extra = {},
  ) =>
    put(
      controlRecord({
        time: tick(),
        device,
        direction: dir === 'guest-to-host' ? 'driver-to-device' : 'device-to-driver',
        bytes: encodeControl({ id, event, value, ...extra }),
      }),
    );
  const data = (p: CaptureInterface, direction: Direction, bytes: Uint8Array | string) =>
    put(
      dataRecord({
        time: tick(),
        device: p.device,
        port: p.port,
        portName: p.name,
        direction,
        bytes: typeof bytes === 'string' ? Buffer.from(bytes) : bytes,
      }),
    );
  const ev = (
    p: CaptureInterface | undefined,
    device: string,
    e: Parameters<typeof eventRecord>[0]['event'],
    more = {},
  ) =>
    put(eventRecord({ time: tick(), device, port: p?.port, portName: p?.name, event: e, ...more }));

  for (const p of [PORTS.console!, PORTS.test1!, PORTS.unnamed!, PORTS.qga!])
    capture.addInterface(p);
  const { DEVICE_READY, PORT_ADD, PORT_READY, CONSOLE_PORT, PORT_NAME, PORT_OPEN, RESIZE } =
    CONTROL_EVENT;
  ctl('vser0', 'guest-to-host', 0xffffffff, DEVICE_READY, 1);
  for (const id of [0, 1, 2]) ctl('vser0', 'host-to-guest', id, PORT_ADD, 0);
  ctl('vser0', 'guest-to-host', 0, PORT_READY, 1);
  ctl('vser0', 'host-to-guest', 0, CONSOLE_PORT, 1);
  ctl('vser0', 'host-to-guest', 0, RESIZE, 0, { cols: 80, rows: 25 });
  ctl('vser0', 'guest-to-host', 1, PORT_READY, 1);
  ctl('vser0', 'host-to-guest', 1, PORT_NAME, 1, { name: 'test1' });
  ctl('vser0', 'host-to-guest', 1, PORT_OPEN, 1);
  ctl('vser0', 'guest-to-host', 1, PORT_OPEN, 1);
  ev(PORTS.test1, 'vser0', 'guest-open');
  ev(PORTS.test1, 'vser0', 'host-open');
  data(PORTS.test1!, 'host-to-guest', 'hello guest\n');
  data(PORTS.test1!, 'guest-to-host', 'hi host\n');
  data(PORTS.test1!, 'host-to-guest', 'second line\n');
  data(PORTS.unnamed!, 'host-to-guest', BINARY);
  data(PORTS.console!, 'guest-to-host', 'login: ');
  ctl('vser1', 'guest-to-host', 0xffffffff, DEVICE_READY, 1);
  ctl('vser1', 'host-to-guest', 1, PORT_NAME, 1, { name: 'org.qemu.guest_agent.0' });
  data(PORTS.qga!, 'guest-to-host', '{"execute":"guest-ping"}\n');
  data(PORTS.qga!, 'host-to-guest', '{"return":{}}\n');
  // port 2 off for a while: these two are not captured
  capture.setPort('vser0', 2, false);
  data(PORTS.unnamed!, 'guest-to-host', 'not captured');
  data(PORTS.unnamed!, 'host-to-guest', 'not captured either');
  capture.setPort('vser0', 2, undefined);
  ev(PORTS.unnamed, 'vser0', 'drop', {
    direction: 'guest-to-host',
    count: 4096,
    reason: 'host not connected',
  });
  ev(PORTS.test1, 'vser0', 'throttle-on');
  ev(PORTS.test1, 'vser0', 'throttle-off');
  // hot-plug
  capture.addInterface(PORTS.hp1!);
  ev(PORTS.hp1, 'vser0', 'port-added');
  ctl('vser0', 'host-to-guest', 3, PORT_ADD, 0);
  ctl('vser0', 'host-to-guest', 3, PORT_NAME, 1, { name: 'hp1' });
  data(PORTS.hp1!, 'host-to-guest', 'hot data');
  data(PORTS.hp1!, 'guest-to-host', Uint8Array.of(1, 2, 0xff, 0));
  put(
    ringRecord({
      time: tick(),
      device: 'vser0',
      port: 1,
      portName: 'test1',
      queue: 5,
      op: 'device-push',
      text: 'q5 device-push: head 3 len 12',
    }),
  );
  ev(undefined, 'vser1', 'needs-reset', { rule: 'M2', reason: 'head index 300 >= queue size 128' });
  ev(PORTS.test1, 'vser0', 'guest-close');
  data(PORTS.test1!, 'guest-to-host', '');
  const err = w.close();
  if (err) throw new Error(String(err));
  const interfaceNames = written.map((r) => {
    if (r.kind === 'control') return `${r.device}:control`;
    if (r.kind === 'event' || r.kind === 'ring') return 'vmchan:events';
    const p = Object.values(PORTS).find((x) => x.device === r.device && x.port === r.port)!;
    return p.name ?? `vport${p.deviceIndex}p${p.port}`;
  });
  return {
    file,
    written,
    interfaceNames,
    interfaces: [PORTS.console!, PORTS.test1!, PORTS.unnamed!, PORTS.qga!, PORTS.hp1!],
  };
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

/**
 * Compile the capture sources (and core/version.ts) to JavaScript in `dir`
 * so a plain `node` child process can import them.
 */
export function compileCaptureTo(dir: string): void {
  // The writer and its imports, followed whatever they are (child-modules.ts).
  transpileTo(dir, ['core/capture/pcapng-writer.ts', 'core/capture/record.ts']);
}
