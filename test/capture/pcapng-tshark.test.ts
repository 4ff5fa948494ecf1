/**
 * The writer's files as the real tshark reads them: frames, interfaces
 * (including one added mid-file for a hot-plugged port), directions,
 * comments, payload bytes, and the Lua dissector's decoding.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import * as path from 'node:path';
import {
  LUA,
  describeWithTshark,
  hex,
  tempDir,
  tshark,
  tsharkFields,
  writeScenario,
  type Scenario,
  removeTempDirs,
} from './helpers.js';
import { CaptureError } from '../../core/capture/error.js';

afterAll(removeTempDirs);

let sc: Scenario;

beforeAll(() => {
  sc = writeScenario(path.join(tempDir('tshark'), 'scenario.pcapng'));
});

describeWithTshark('pcapng files read by tshark', () => {
  it('has one frame per captured record, and leaves out the port that was switched off', () => {
    const rows = tsharkFields(sc.file, ['frame.number']);
    expect(rows.map((r) => Number(r[0]))).toEqual(sc.written.map((_, i) => i + 1));
    expect(
      sc.written.some(
        (r) => r.kind === 'data' && new TextDecoder().decode(r.bytes).includes('not captured'),
      ),
    ).toBe(false);
  });

  it('names each frame by its interface: ports, control per device, events', () => {
    const rows = tsharkFields(sc.file, ['frame.interface_name']);
    expect(rows.map((r) => r[0])).toEqual(sc.interfaceNames);
    expect(new Set(sc.interfaceNames)).toEqual(
      new Set([
        'vser0:control',
        'vser1:control',
        'vmchan:events',
        'test1',
        'vport0p2',
        'vport0p0',
        'org.qemu.guest_agent.0',
        'hp1',
      ]),
    );
  });

  it('describes ports, and the hot-plugged one comes after packets of the others', () => {
    const rows = tsharkFields(sc.file, [
      'frame.number',
      'frame.interface_name',
      'frame.interface_description',
      'frame.interface_id',
    ]);
    const byName = new Map(rows.map((r) => [r[1]!, r]));
    expect(byName.get('test1')![2]).toBe(
      'device vser0, port 1, virtserialport, chardev c1 (unix:/tmp/vmchan-c1.sock,server=on,wait=off)',
    );
    expect(byName.get('vport0p2')![2]).toBe(
      'device vser0, port 2, virtserialport, chardev c2 (tcp:127.0.0.1:4555,server=on)',
    );
    expect(byName.get('vport0p0')![2]).toBe(
      'device vser0, port 0, virtconsole, chardev con0 (pty)',
    );
    expect(byName.get('hp1')![2]).toBe('device vser0, port 3, virtserialport, no chardev');
    expect(byName.get('vser0:control')![2]).toBe('device vser0, control messages');
    // the hot-plugged port's interface has the highest id and its first frame is late in the file
    const hpId = Number(byName.get('hp1')![3]);
    expect(hpId).toBe(Math.max(...rows.map((r) => Number(r[3]))));
    const firstHp = rows.find((r) => r[1] === 'hp1')!;
    expect(Number(firstHp[0])).toBeGreaterThan(20);
  });

  it('marks host-to-guest inbound (1) and guest-to-host outbound (2), events without direction none', () => {
    const rows = tsharkFields(sc.file, ['frame.packet_flags_direction']);
    const want = sc.written.map((r) =>
      r.direction === undefined
        ? ''
        : r.direction === 'host-to-guest'
          ? '0x00000001'
          : '0x00000002',
    );
    expect(rows.map((r) => r[0] ?? '')).toEqual(want);
  });

  it('carries event text as packet comments', () => {
    const rows = tsharkFields(sc.file, ['frame.comment']);
    const want = sc.written.map((r) => (r.kind === 'event' || r.kind === 'ring' ? r.text : ''));
    expect(rows.map((r) => r[0] ?? '')).toEqual(want);
    expect(want).toContain('vser0 port 2: dropped 4096 bytes (host not connected)');
    expect(want).toContain('vser1: NEEDS_RESET (M2) (head index 300 >= queue size 128)');
  });

  it('stores exactly the channel bytes as the payload, and nanosecond timestamps', () => {
    const rows = tsharkFields(sc.file, ['data.data', 'frame.time_epoch', 'frame.len']);
    sc.written.forEach((r, i) => {
      const row = rows[i]!;
      if (r.kind === 'data' || r.kind === 'control') {
        expect((row[0] ?? '').replace(/:/g, '')).toBe(hex(r.bytes));
        expect(Number(row[2])).toBe(r.bytes.length);
      }
      const [sec, frac] = row[1]!.split('.');
      expect(BigInt(sec!) * 1_000_000_000n + BigInt((frac ?? '').padEnd(9, '0'))).toBe(r.time);
    });
  });

  it('decodes control messages, events and data with the Lua dissector', () => {
    const r = tshark([
      '-X',
      `lua_script:${LUA}`,
      '-r',
      sc.file,
      '-T',
      'fields',
      '-E',
      'separator=/t',
      '-e',
      'vmchan.kind',
      '-e',
      'vmchan.ctrl.event',
      '-e',
      'vmchan.ctrl.id',
      '-e',
      'vmchan.ctrl.value',
      '-e',
      'vmchan.ctrl.name',
      '-e',
      'vmchan.ctrl.cols',
      '-e',
      'vmchan.ctrl.rows',
      '-e',
      'vmchan.direction',
      '-e',
      'vmchan.device',
      '-e',
      'vmchan.event.code',
      '-e',
      '_ws.col.Info',
    ]);
    expect(r.stderr).not.toMatch(/Lua: Error|error/i);
    expect(r.status).toBe(0);
    const rows = r.stdout
      .split('\n')
      .filter((l) => l)
      .map((l) => l.split('\t'));
    expect(rows.length).toBe(sc.written.length);
    sc.written.forEach((rec, i) => {
      const [kind, event, id, value, name, cols, rows_, dir, device, evCode, info] = rows[i]!;
      expect(kind).toBe(rec.kind);
      if (rec.direction) expect(dir).toBe(rec.direction === 'host-to-guest' ? 'h2g' : 'g2h');
      if (rec.kind === 'control') {
        const c = rec.control;
        if (c instanceof CaptureError) throw new Error('scenario control message did not decode');
        expect(device).toBe(rec.device);
        expect(Number(event)).toBe(c.event);
        expect(Number(id)).toBe(c.id);
        expect(Number(value)).toBe(c.value);
        if (c.name !== undefined) expect(name).toBe(c.name);
        if (c.cols !== undefined) expect([Number(cols), Number(rows_)]).toEqual([c.cols, c.rows]);
        expect(info).toContain(c.eventName);
      }
      if (rec.kind === 'event') {
        expect(info).toBe(rec.text);
        expect(Number(evCode)).toBeGreaterThan(0);
      }
      if (rec.kind === 'data' && rec.bytes.length > 0) {
        expect(info).toContain(rec.direction === 'host-to-guest' ? 'H→G' : 'G→H');
      }
    });
    const infos = rows.map((row) => row[10]);
    expect(infos).toContain('vser0 G→H DEVICE_READY id=0xffffffff value=1');
    expect(infos).toContain('vser0 H→G RESIZE id=0 cols=80 rows=25');
    expect(infos).toContain('vser0 H→G PORT_NAME id=1 name="test1"');
    expect(infos).toContain('vser0 G→H PORT_OPEN id=1 value=1');
    expect(infos).toContain('test1 H→G 12 bytes hello guest.');
  });

  it('shows the decoded tree with -V', () => {
    const r = tshark([
      '-X',
      `lua_script:${LUA}`,
      '-r',
      sc.file,
      '-V',
      '-O',
      'vmchan',
      '-Y',
      'vmchan.ctrl.event == 5',
    ]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('vmchan control');
    expect(r.stdout).toMatch(/Event: RESIZE \(5\)/);
    expect(r.stdout).toMatch(/Columns: 80/);
    expect(r.stdout).toMatch(/Rows: 25/);
  });

  it('lets Wireshark display filters use the dissector fields', () => {
    const r = tshark([
      '-X',
      `lua_script:${LUA}`,
      '-r',
      sc.file,
      '-Y',
      'vmchan.port_name == "hp1"',
      '-T',
      'fields',
      '-e',
      'frame.number',
    ]);
    expect(r.status).toBe(0);
    const hpFrames = sc.written.flatMap((rec, i) =>
      rec.kind === 'data' && rec.portName === 'hp1' ? [i + 1] : [],
    );
    expect(r.stdout.trim().split('\n').map(Number)).toEqual(hpFrames);
  });
});
