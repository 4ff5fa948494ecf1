/**
 * Bad-input corpus, QMP, HMP and qemu-ga (issue 13): every bad line gets
 * one answer in QEMU's shape naming what is wrong, the connection stays
 * up and the next good command is answered; a large line is answered
 * without the process going away.
 */
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGuestAgents, type GuestAgents } from '../../core/qga/index.js';
import {
  HmpClient,
  QmpClient,
  SocketClient,
  recordedMachineArgs,
  removeTempDirs,
  startRig,
  tempDir,
  unixServer,
  waitFor,
  type Rig,
} from '../monitor/helpers.js';
import {
  HMP_CASES,
  QGA_CASES,
  QMP_CASES,
  QMP_SYNTAX_CASES,
  type JsonCase,
} from './monitors.cases.js';
import { expectClearLine } from './clear.js';

let rig: Rig;
let agents: GuestAgents;
let qmp: QmpClient;
let hmp: HmpClient;
let qga: SocketClient;
let qgaSeen = 0;

beforeAll(async () => {
  const dir = tempDir('bad');
  rig = await startRig(
    recordedMachineArgs(dir, [
      ...unixServer(dir, 'qga0'),
      '-device',
      'virtserialport,bus=vser0.0,chardev=qga0,name=org.qemu.guest_agent.0,id=qga',
    ]),
    dir,
  );
  agents = startGuestAgents(rig.machine.lab);
  await waitFor(() => agents.current?.state === 'running', 'the agent');
  qmp = await QmpClient.connect(path.join(dir, 'qmp'));
  await qmp.nextLine(); // the answer to qmp_capabilities
  hmp = (await HmpClient.connect(path.join(dir, 'hmp'))).hmp;
  qga = await SocketClient.connect(path.join(dir, 'qga0'));
});
afterAll(async () => {
  await qmp.close();
  await hmp.close();
  await qga.close();
  agents.close();
  await rig.close();
  removeTempDirs();
});

type Reply = { error?: { class: string; desc: string }; return?: unknown };

async function qmpReply(line: string): Promise<Reply> {
  qmp.send(`${line}\n`);
  for (;;) {
    const m = JSON.parse(await qmp.nextLine()) as Reply & { event?: string };
    if (m.event === undefined) return m;
  }
}

async function qgaReply(line: string): Promise<Reply> {
  qga.write(`${line}\n`);
  await qga.until((b) => b.indexOf(0x0a, qgaSeen) >= 0, `the agent's reply to ${line}`);
  const end = qga.received.indexOf(0x0a, qgaSeen) + 1;
  const text = qga.received.subarray(qgaSeen, end).toString();
  qgaSeen = end;
  return JSON.parse(text) as Reply;
}

function expectError(r: Reply, c: JsonCase): void {
  expect(r.error, `answered ${JSON.stringify(r)}`).toBeDefined();
  expect(r.error!.class).toBe(c.klass);
  expectClearLine(r.error!.desc, c.desc);
}

describe('bad input: QMP', () => {
  for (const c of [...QMP_CASES, ...QMP_SYNTAX_CASES]) {
    it(c.line, async () => {
      expectError(await qmpReply(c.line), c);
      expect(await qmpReply('{"execute": "query-status"}')).toHaveProperty('return');
    });
  }
});

describe('bad input: HMP', () => {
  for (const c of HMP_CASES) {
    it(c.line, async () => {
      // HMP may add a hint line ("Try "help CMD" for more information"); the first names the problem.
      const out = await hmp.command(c.line);
      const [first = '', ...rest] = out.split('\r\n');
      expectClearLine(first, c.answer);
      for (const line of rest) expect(line).not.toMatch(/\bat .*\.(js|ts):\d+|Internal/);
      expect(await hmp.command('info version')).toMatch(/^7\.2/);
    });
  }
});

describe('bad input: qemu-ga', () => {
  for (const c of QGA_CASES) {
    it(c.line, async () => {
      expectError(await qgaReply(c.line), c);
      expect(await qgaReply('{"execute": "guest-ping"}')).toEqual({ return: {} });
    });
  }
});
