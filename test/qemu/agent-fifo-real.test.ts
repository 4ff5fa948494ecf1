/**
 * The simulated guest agent (core/qga) against the real qemu-ga 7.2, both
 * reached on a FIFO: a `-chardev pipe,path=P` agent channel (P.in carries
 * the host's requests, P.out the agent's answers), once in vmchan's lab
 * (the simulated guest's agent) and once on a real QEMU whose test guest
 * runs Debian's qemu-ga on org.qemu.guest_agent.0 (`vmchan.qga=on`). The
 * same requests go to both (guest-sync, guest-sync-delimited, guest-ping,
 * guest-info, an unknown command, malformed JSON, a non-object, an object
 * without `execute`, a missing argument) and the answers are compared:
 * byte for byte where the answer is fixed, field by field for guest-info.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startGuestAgents, type GuestAgents } from '../../core/qga/index.js';
import {
  AGENT_INSTALL_HINT,
  AGENT_PORT,
  missingAgent,
  startGuest,
  type Guest,
} from '../guest/qemu.js';
import { isGuestError } from '../guest/guest-shell.js';
import { startRig, type Rig } from '../monitor/helpers.js';
import { describeRealGuest, poller, requirePrerequisites } from './real-guest.js';

const noAgent = missingAgent();

/**
 * The host end of a pipe chardev: writes go into `base.in`, answers are
 * read from `base.out`, one LF-terminated line per answer.
 */
class FifoAgentEnd {
  private got = Buffer.alloc(0);
  private wake = (): void => {};

  private constructor(
    private readonly requests: net.Socket,
    private readonly answers: net.Socket,
    readonly base: string,
  ) {
    answers.on('data', (b: Buffer) => {
      this.got = Buffer.concat([this.got, b]);
      this.wake();
    });
  }

  /** Both FIFOs, opened non-blocking (the chardev's owner holds them open read+write). */
  static open(base: string): FifoAgentEnd {
    const w = fs.openSync(`${base}.in`, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    const r = fs.openSync(`${base}.out`, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    return new FifoAgentEnd(
      new net.Socket({ fd: w, readable: false, writable: true }),
      new net.Socket({ fd: r, readable: true, writable: false }),
      base,
    );
  }

  /** Send one line; the raw answer up to and including its LF, or fail naming the request. */
  async ask(line: string, timeoutMs = 30_000): Promise<Buffer> {
    this.requests.write(`${line}\n`);
    const end = Date.now() + timeoutMs;
    for (;;) {
      const nl = this.got.indexOf(0x0a);
      if (nl >= 0) {
        const answer = this.got.subarray(0, nl + 1);
        this.got = Buffer.from(this.got.subarray(nl + 1));
        return Buffer.from(answer);
      }
      if (Date.now() > end)
        throw new Error(
          `no answer on ${this.base}.out to ${line} within ${timeoutMs} ms (got ${JSON.stringify(this.got.toString())})`,
        );
      await new Promise<void>((res) => {
        this.wake = res;
        setTimeout(res, Math.max(0, end - Date.now())); // only the deadline: data wakes it
      });
    }
  }

  close(): void {
    this.requests.destroy();
    this.answers.destroy();
  }
}

function mkfifos(base: string): void {
  execFileSync('mkfifo', ['-m', '0600', `${base}.in`, `${base}.out`]);
}

const agentDevice = (chardev: string): string[] => [
  '-device',
  `virtserialport,bus=vser0.0,chardev=${chardev},name=${AGENT_PORT.name},id=${AGENT_PORT.id}`,
];

/** The requests both agents get, in order; each answer is one line. */
const FIXED: readonly string[] = [
  '{"execute": "guest-sync", "arguments": {"id": 4242}}',
  '{"execute": "guest-ping"}',
  '{"execute": "guest-ping", "id": "p1"}',
  '{"execute": "guest-frobnicate"}',
  '{"execute": }',
  '{"execute": "guest-sync", "arguments": {"id": 5}}',
  '[1]',
  '{"id": 1}',
  '{}',
  '7',
  '{"execute": "guest-sync", "arguments": {"id": "x"}}',
  '{"execute": "guest-ping", "arguments": {"x": 1}}',
  '{"execute": 1}',
  '{"execute": "guest-sync", "arguments": {}}',
  '{"execute": "guest-sync-delimited", "arguments": {"id": 7}}',
];

interface CommandInfo {
  name: string;
  enabled: boolean;
  'success-response': boolean;
}
interface Info {
  version: string;
  supported_commands: CommandInfo[];
}

describeRealGuest('the simulated agent and qemu-ga 7.2 on a FIFO', 'agent FIFO tests', () => {
  let guest: Guest | undefined;
  let rig: Rig | undefined;
  let agents: GuestAgents | undefined;
  let real: FifoAgentEnd;
  let sim: FifoAgentEnd;
  let dir: string;

  beforeAll(async () => {
    requirePrerequisites('the agent FIFO comparison');
    if (noAgent.length > 0)
      throw new Error(
        `cannot compare with qemu-ga: missing ${noAgent.join(', ')}; install with: ${AGENT_INSTALL_HINT}`,
      );
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-qga-fifo-'));
    const realBase = path.join(dir, 'real-qga');
    const simBase = path.join(dir, 'sim-qga');
    mkfifos(realBase);
    mkfifos(simBase);

    const g = await startGuest({
      // On a loaded host TCG can miss the kernel's IO-APIC timer check and panic at boot.
      append: 'no_timer_check vmchan.qga=on',
      extraArgs: ['-chardev', `pipe,id=qgapipe,path=${realBase}`, ...agentDevice('qgapipe')],
    });
    if (isGuestError(g)) throw new Error(g.toString());
    guest = g;
    await poller(60_000, 500)(
      'qemu-ga running in the guest on the pipe channel (/run/qemu-ga.pid)',
      async () => {
        const r = await g.shell.run('cat /run/qemu-ga.pid 2>/dev/null || echo none');
        if (isGuestError(r)) throw new Error(r.toString());
        return r.output;
      },
      (out) => /^\d+/.test(out),
    );
    real = FifoAgentEnd.open(realBase);

    rig = await startRig(
      [
        '-chardev',
        `pipe,id=qgapipe,path=${simBase}`,
        '-device',
        'virtio-serial-pci,id=vser0,max_ports=8',
        ...agentDevice('qgapipe'),
      ],
      dir,
    );
    const a = startGuestAgents(rig.machine.lab);
    agents = a;
    await poller(10_000, 20)(
      'the simulated agent running',
      () => a.current?.state,
      (s) => s === 'running',
    );
    sim = FifoAgentEnd.open(simBase);

    // Whatever either end may hold from before: a sync both answer with the same id.
    for (const end of [real, sim])
      expect((await end.ask('{"execute": "guest-sync", "arguments": {"id": 1}}')).toString()).toBe(
        '{"return": 1}\n',
      );
  }, 180_000);

  afterAll(async () => {
    real?.close();
    sim?.close();
    agents?.close();
    await rig?.close();
    await guest?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('Q7 answers sync, ping, errors and malformed input byte for byte as qemu-ga 7.2', async () => {
    const realAnswers: string[] = [];
    const simAnswers: string[] = [];
    for (const line of FIXED) {
      realAnswers.push((await real.ask(line)).toString('latin1'));
      simAnswers.push((await sim.ask(line)).toString('latin1'));
    }
    // each request with its two answers, so a difference names the request
    const pairs = FIXED.map((line, i) => ({ line, real: realAnswers[i], sim: simAnswers[i] }));
    expect(pairs.map((p) => ({ line: p.line, answer: p.sim }))).toEqual(
      pairs.map((p) => ({ line: p.line, answer: p.real })),
    );
    // the answers are the ones the protocol promises, not two agents agreeing on nothing
    expect(realAnswers[FIXED.indexOf('{"execute": "guest-sync", "arguments": {"id": 4242}}')]).toBe(
      '{"return": 4242}\n',
    );
    expect(realAnswers[FIXED.indexOf('{"execute": "guest-frobnicate"}')]).toBe(
      '{"error": {"class": "CommandNotFound", "desc": "The command guest-frobnicate has not been found"}}\n',
    );
    expect(realAnswers.at(-1)).toBe('\xff{"return": 7}\n');
  }, 120_000);

  it('Q7 guest-info: the same version and, field by field, the same entry for every command the simulated agent has', async () => {
    const parse = (b: Buffer): Info => (JSON.parse(b.toString()) as { return: Info }).return;
    const realInfo = parse(await real.ask('{"execute": "guest-info"}'));
    const simInfo = parse(await sim.ask('{"execute": "guest-info"}'));
    expect(Object.keys(simInfo).sort()).toEqual(Object.keys(realInfo).sort());
    expect(simInfo.version).toBe(realInfo.version);
    const realByName = new Map(realInfo.supported_commands.map((c) => [c.name, c]));
    // x-guest-file-poll is vmchan's own extension (L6), which a real qemu-ga has not
    const shared = simInfo.supported_commands.filter((c) => c.name !== 'x-guest-file-poll');
    expect(shared.length).toBeGreaterThan(5);
    expect(shared.map((c) => ({ ...c, fields: Object.keys(c).sort() }))).toEqual(
      shared.map((c) => {
        const r = realByName.get(c.name);
        return r === undefined
          ? { name: c.name, missingInRealQemuGa: true }
          : { ...r, fields: Object.keys(r).sort() };
      }),
    );
    expect(realByName.has('x-guest-file-poll')).toBe(false);
  }, 60_000);
});
