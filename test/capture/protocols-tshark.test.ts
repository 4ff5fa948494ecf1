/**
 * Channel protocols decoded the same way by vmchan (core/capture/protocols.ts,
 * `vmchan read -V`, the filter language) and by the Lua dissector in the
 * real tshark (`tshark -V`, `vmchan.*` display filters): qemu-ga commands,
 * answers, errors and the 0xFF sync delimiter; SPICE vdagent headers;
 * libguestfs headers; text and JSON lines on other ports.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Capture, dataRecord, type Direction } from '../../core/capture/record.js';
import { PcapngWriter } from '../../core/capture/pcapng-writer.js';
import { CaptureError } from '../../core/capture/error.js';
import { decodePayload, setPortProtocol } from '../../core/capture/protocols.js';
import { filterRecords, isFilterError, parseFilter } from '../../core/capture/filter.js';
import { describeWithTshark, LUA, removeTempDirs, tempDir, tshark, ROOT } from './helpers.js';
import type { CaptureRecord } from '../../core/capture/record.js';

afterAll(removeTempDirs);

const QGA = 'org.qemu.guest_agent.0';
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const withFF = (s: string): Uint8Array => new Uint8Array([0xff, ...enc(s)]);

function vdagentClipboardGrab(): Uint8Array {
  const b = Buffer.alloc(28 + 4);
  b.writeUInt32LE(1, 0); // chunk port (client)
  b.writeUInt32LE(24, 4); // chunk size
  b.writeUInt32LE(1, 8); // protocol
  b.writeUInt32LE(7, 12); // CLIPBOARD_GRAB
  b.writeBigUInt64LE(0n, 16);
  b.writeUInt32LE(4, 24); // message size
  b.writeUInt32LE(1, 28); // UTF8_TEXT
  return b;
}

function guestfsCall(): Uint8Array {
  const b = Buffer.alloc(28);
  b.writeUInt32BE(24, 0);
  b.writeUInt32BE(0x2000f5f5, 4);
  b.writeUInt32BE(4, 8);
  b.writeUInt32BE(1, 12); // proc
  b.writeUInt32BE(0, 16); // call
  b.writeUInt32BE(7, 20); // serial
  b.writeUInt32BE(0, 24);
  return b;
}

const TRAFFIC: [string, number, Direction, Uint8Array][] = [
  [QGA, 3, 'host-to-guest', withFF('{"execute":"guest-sync-delimited","arguments":{"id":1234}}\n')],
  [QGA, 3, 'guest-to-host', withFF('{"return": 1234}\n')],
  [QGA, 3, 'host-to-guest', enc('{"execute":"guest-ping"}\n')],
  [QGA, 3, 'guest-to-host', enc('{"return": {}}\n')],
  [QGA, 3, 'host-to-guest', enc('{"execute":"guest-sync","arguments":{"id":77}}\n')],
  [QGA, 3, 'guest-to-host', enc('{"return": 77}\n')],
  [QGA, 3, 'host-to-guest', enc('{"execute":"nope"}\n')],
  [
    QGA,
    3,
    'guest-to-host',
    enc('{"error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}}\n'),
  ],
  ['com.redhat.spice.0', 4, 'guest-to-host', vdagentClipboardGrab()],
  ['org.libguestfs.channel.0', 5, 'host-to-guest', guestfsCall()],
  ['test1', 1, 'guest-to-host', enc('hello there\nsecond line\n')],
  ['test1', 1, 'host-to-guest', enc('{"op":"ping","n":1}\n')],
  ['test1', 1, 'host-to-guest', new Uint8Array([0, 1, 2, 3])],
];

let file = '';
let records: CaptureRecord[] = [];

beforeAll(() => {
  file = path.join(tempDir('protocols'), 'protocols.pcapng');
  const w = PcapngWriter.create(file, { os: false });
  if (w instanceof CaptureError) throw new Error(w.message);
  const capture = new Capture();
  capture.attach(w);
  capture.setAll(true);
  const names = new Map(TRAFFIC.map(([n, nr]) => [nr, n]));
  for (const [nr, name] of names)
    capture.addInterface({
      device: 'vser0',
      deviceIndex: 0,
      port: nr,
      kind: 'virtserialport',
      name,
    });
  let t = 1_700_000_000_000_000_000n;
  records = TRAFFIC.map(([name, nr, direction, bytes]) =>
    dataRecord({ time: (t += 1000n), device: 'vser0', port: nr, portName: name, direction, bytes }),
  );
  for (const r of records) capture.write(r);
  capture.close();
});

describe('channel protocols in vmchan', () => {
  it('qemu-ga: commands, answers, errors and the sync delimiter', () => {
    const d = decodePayload(QGA, TRAFFIC[0]![3])!;
    expect(d.protocol).toBe('qga');
    expect(d.fields.map((f) => [f.name, f.value])).toEqual([
      ['qga.sync_delimiter', true],
      ['qga.type', 'command'],
      ['qga.command', 'guest-sync-delimited'],
      ['qga.id', 1234],
    ]);
    const err = decodePayload(QGA, TRAFFIC[7]![3])!;
    expect(err.summary).toBe('error CommandNotFound: The command nope has not been found');
  });

  it('vdagent and libguestfs headers; text and JSON guessed on other ports; the table is extendable', () => {
    expect(decodePayload('com.redhat.spice.0', TRAFFIC[8]![3])!.summary).toBe(
      'CLIPBOARD_GRAB (4 bytes)',
    );
    expect(decodePayload('org.libguestfs.channel.0', TRAFFIC[9]![3])!.summary).toBe(
      'call proc 1 serial 7',
    );
    expect(decodePayload('test1', TRAFFIC[10]![3])!.protocol).toBe('text');
    expect(decodePayload('test1', TRAFFIC[11]![3])!.protocol).toBe('json');
    expect(decodePayload('test1', TRAFFIC[12]![3])).toBeUndefined();
    setPortProtocol('test1', 'qga');
    expect(decodePayload('test1', TRAFFIC[11]![3])!.protocol).toBe('qga');
    setPortProtocol('test1', undefined);
  });

  it('filters on decoded fields: qga.command == "guest-sync", proto == vdagent', () => {
    const f = parseFilter('qga.command == "guest-sync"');
    if (isFilterError(f)) throw new Error(f.toString());
    expect(filterRecords(f, records)).toEqual([4]);
    const g = parseFilter(
      'proto == vdagent or qga.error.class == CommandNotFound or qga.id > 1000',
    );
    if (isFilterError(g)) throw new Error(g.toString());
    expect(filterRecords(g, records)).toEqual([0, 7, 8]);
  });
});

/** The lines of the `title` subtrees of each frame in tshark -V style text. */
function protocolBlocks(text: string, titles: string[]): string[][] {
  const frames = text.split(/^Frame \d+: /m).slice(1);
  return frames.map((frame) => {
    const out: string[] = [];
    let inside = false;
    for (const line of frame.split('\n')) {
      if (!line.startsWith(' ')) inside = titles.includes(line.trim());
      if (inside) out.push(line.trimEnd());
    }
    return out;
  });
}

describeWithTshark('channel protocols in tshark agree with vmchan read -V', () => {
  it('every decoded field of every frame, line for line', () => {
    const dist = path.join(ROOT, 'dist', 'cli', 'read.js');
    if (!fs.existsSync(dist)) throw new Error('the CLI is not built: run `npm run build`');
    const ours = spawnSync(
      process.execPath,
      [path.join(ROOT, 'bin', 'vmchan.js'), 'read', '-V', file],
      {
        encoding: 'utf8',
      },
    );
    expect(ours.stderr).toBe('');
    const theirs = tshark(['-X', `lua_script:${LUA}`, '-r', file, '-V']);
    expect(theirs.stderr).not.toMatch(/Lua: Error|error/i);
    const titles = [
      'QEMU Guest Agent',
      'SPICE vdagent',
      'libguestfs channel',
      'JSON lines',
      'Text lines',
    ];
    const a = protocolBlocks(ours.stdout, titles);
    const b = protocolBlocks(theirs.stdout, titles);
    expect(a).toHaveLength(TRAFFIC.length);
    expect(b).toEqual(a);
    expect(a[0]).toEqual([
      'QEMU Guest Agent',
      '    Sync delimiter (0xFF): True',
      '    Message: command',
      '    Command: guest-sync-delimited',
      '    Sync id: 1234',
    ]);
  });

  it('vmchan.qga.command in Wireshark selects what qga.command selects in vmchan', () => {
    const r = tshark([
      '-X',
      `lua_script:${LUA}`,
      '-r',
      file,
      '-Y',
      'vmchan.qga.command == "guest-sync"',
      '-T',
      'fields',
      '-e',
      'frame.number',
    ]);
    expect(r.stdout.trim()).toBe('5');
    const e = tshark([
      '-X',
      `lua_script:${LUA}`,
      '-r',
      file,
      '-Y',
      'vmchan.qga.error.class',
      '-T',
      'fields',
      '-e',
      'vmchan.qga.error.desc',
    ]);
    expect(e.stdout.trim()).toBe('The command nope has not been found');
  });
});

describe('channel protocols in the app (core/api capture view)', () => {
  it('a Protocol column per row and the protocol subtree in the detail', async () => {
    const { CaptureView, isViewError } = await import('../../core/api/server/capture-view.js');
    const view = await CaptureView.open(file);
    if (isViewError(view)) throw new Error(view.message);
    const rows = view.rows(0, 20, 'proto == qga');
    if (isViewError(rows)) throw new Error(rows.message);
    expect(rows.rows.map((r) => r.protocol)).toEqual(Array(8).fill('qga'));
    const detail = view.detail(1);
    if (isViewError(detail)) throw new Error(detail.message);
    expect(detail.decoded?.title).toBe('QEMU Guest Agent');
    expect(detail.decoded?.fields.find((f) => f.name === 'qga.command')?.value).toBe(
      'guest-sync-delimited',
    );
    view.close();
  });
});
