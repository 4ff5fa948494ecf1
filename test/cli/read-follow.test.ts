/**
 * `vmchan read` and `vmchan follow` run as a person runs them: the built
 * binary in a child process, on a capture written by the real writer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { removeTempDirs, tempDir, writeScenario, type Scenario } from '../capture/helpers.js';
import { requireBuiltCli, VMCHAN_BIN, vmchan } from './run-vmchan.js';

let scenario: Scenario;
let dir: string;

beforeAll(() => {
  requireBuiltCli();
  dir = tempDir('vmchan-cli-');
  scenario = writeScenario(path.join(dir, 'lab.pcapng'));
});
afterAll(removeTempDirs);

describe('vmchan read', () => {
  it('prints one line per record with number, time, port, direction, length and summary', () => {
    const r = vmchan(['read', scenario.file]);
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(scenario.written.length);
    expect(lines[0]).toMatch(/^\s+1\s+0\.000000000\s/);
    const firstData = scenario.written.findIndex(
      (w) => w.kind === 'data' && w.portName === 'test1',
    );
    expect(lines[firstData]).toContain('test1');
    expect(lines[firstData]).toMatch(/H→G|G→H/);
    expect(lines.some((l) => l.includes('PORT_OPEN'))).toBe(true);
  });

  it('filters with -Y and dumps bytes with -x', () => {
    const r = vmchan(['read', scenario.file, '-Y', 'port == test1 and kind == data', '-x']);
    expect(r.status).toBe(0);
    const expected = scenario.written.filter((w) => w.kind === 'data' && w.portName === 'test1');
    const summaries = r.stdout.split('\n').filter((l) => /^\s+\d+\s+\d+\.\d{9}\s/.test(l));
    expect(summaries).toHaveLength(expected.length);
    expect(r.stdout).toMatch(/^0000 {2}[0-9a-f]{2} /m);
  });

  it('points at the position of a bad filter and exits 2 without a stack trace', () => {
    const r = vmchan(['read', scenario.file, '-Y', 'port == test1 and len >']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/filter error at column \d+/);
    expect(r.stderr).toContain('^');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('rejects a file that is not pcapng with a clear message', () => {
    const bogus = path.join(dir, 'not-a-capture.txt');
    fs.writeFileSync(bogus, 'hello, this is text\n');
    const r = vmchan(['read', bogus]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^vmchan: .*not a pcapng file/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('vmchan follow', () => {
  it('shows the conversation of one port with both directions marked', () => {
    const r = vmchan(['follow', scenario.file, '--port', 'test1']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/H>/);
    expect(r.stdout).toMatch(/G>/);
  });

  it('writes the raw bytes of one direction', () => {
    const r = spawnSync(process.execPath, [
      VMCHAN_BIN,
      'follow',
      scenario.file,
      '--port',
      'test1',
      '--raw',
      '--direction',
      'h2g',
    ]);
    expect(r.status).toBe(0);
    const expected = Buffer.concat(
      scenario.written
        .filter(
          (w) => w.kind === 'data' && w.portName === 'test1' && w.direction === 'host-to-guest',
        )
        .map((w) => Buffer.from(w.bytes)),
    );
    expect(Buffer.compare(r.stdout, expected)).toBe(0);
  });

  it('names a port that is not in the capture', () => {
    const r = vmchan(['follow', scenario.file, '--port', 'nosuch']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^vmchan: .*nosuch/);
  });
});

describe('vmchan --help', () => {
  it('lists the commands a person can learn from', () => {
    const r = vmchan(['--help']);
    expect(r.status).toBe(0);
    for (const cmd of ['read', 'follow']) expect(r.stdout).toContain(cmd);
    const sub = vmchan(['read', '--help']);
    expect(sub.status).toBe(0);
    expect(sub.stdout).toContain('Filter language');
  });
});
