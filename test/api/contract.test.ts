import { describe, expect, it } from 'vitest';
import {
  BatchSchema,
  ClientMessageSchema,
  CommandSchema,
  ResultSchemas,
  ServerMessageSchema,
  checkAnswer,
  fail,
  parseCommand,
  type Batch,
} from '../../core/api/contract/contract.js';
import { backendFromForm } from '../../core/chardev/kinds/app-spec.js';

const engine = { mode: 'running' as const, pending: 0, executed: 12, booted: true };

function batch(extra: Partial<Batch> = {}): Batch {
  return {
    seq: 1,
    time: 1700000000000,
    events: [],
    samples: [],
    topology: null,
    engine,
    coalesced: { events: 0, byKind: {}, samples: 0, topology: 0 },
    ...extra,
  };
}

describe('commands', () => {
  it('takes every command the faces send', () => {
    const good: unknown[] = [
      { cmd: 'hello' },
      { cmd: 'getTopology' },
      { cmd: 'loadLab', lab: 'demo' },
      { cmd: 'createDevice', device: { id: 'vser1', maxPorts: 8 } },
      { cmd: 'createChardev', chardev: { id: 'c1', backend: { kind: 'unix' } } },
      { cmd: 'createChardev', chardev: { id: 'c2', backend: { kind: 'tcp', port: 4555 } } },
      { cmd: 'removeChardev', id: 'c1' },
      {
        cmd: 'hotplugPort',
        port: {
          driver: 'virtserialport',
          name: 'org.qemu.guest_agent.0',
          newChardev: { id: 'qga', backend: { kind: 'unix', path: 'qga.sock' } },
        },
      },
      { cmd: 'unplugPort', port: { device: 'vser0', nr: 3 } },
      { cmd: 'connectHost', port: { device: 'vser0', nr: 3 }, chardev: 'c1' },
      { cmd: 'disconnectHost', port: { device: 'vser0', nr: 3 } },
      { cmd: 'startCapture' },
      { cmd: 'stopCapture' },
      { cmd: 'pause' },
      { cmd: 'step', count: 5 },
      { cmd: 'run' },
      { cmd: 'importConfig', format: 'qemu', text: '-device virtio-serial' },
      { cmd: 'exportConfig', format: 'libvirt' },
      { cmd: 'getVring', device: 'vser0', queue: 4 },
      { cmd: 'writeHost', port: { device: 'vser0', nr: 1 }, data: 'hello\n' },
      { cmd: 'writeGuest', port: { device: 'vser0', nr: 1 }, data: 'aGk=', base64: true },
      { cmd: 'setWorkload', on: true, speed: 'full' },
    ];
    for (const c of good) expect(parseCommand(c), JSON.stringify(c)).toMatchObject({ ok: true });
  });

  it('passes a chardev spec through; its kind record fills the defaults (server socket, no wait)', () => {
    const r = CommandSchema.parse({
      cmd: 'createChardev',
      chardev: { id: 'c1', backend: { kind: 'unix' } },
    });
    expect(r).toEqual({ cmd: 'createChardev', chardev: { id: 'c1', backend: { kind: 'unix' } } });
    const at = (p: string, fallback: string): string => `/run/lab/${p === '' ? fallback : p}`;
    expect(backendFromForm('c1', { kind: 'unix' }, at)).toEqual({
      kind: 'socket',
      address: { type: 'unix', path: '/run/lab/c1' },
      server: true,
      wait: false,
      nodelay: false,
    });
  });

  it("the app's chardev fields are checked by the kind's record, in the same words everywhere", () => {
    const at = (p: string): string => p;
    expect(backendFromForm('c1', { kind: 'tcp', port: 70000 }, at)).toBe(
      'backend.port: must be at most 65535',
    );
    // The topology's rule, not a second copy of it (issue 12: the API and topology disagreed).
    expect(backendFromForm('c1', { kind: 'ringbuf', size: 1000 }, at)).toBe(
      'backend.size: size of ringbuf chardev must be power of two',
    );
    expect(backendFromForm('c1', { kind: 'serial' }, at)).toMatch(
      /^backend\.kind: 'serial' is not one of unix, tcp/,
    );
    expect(backendFromForm('c1', { kind: 'null', path: '/x' }, at)).toBe(
      "backend.path: not a field of 'null'",
    );
  });

  it('refuses malformed commands with one line saying where', () => {
    const cases: [unknown, RegExp][] = [
      [null, /expected object/i],
      [{ cmd: 'rm -rf' }, /cmd|invalid/i],
      [{ cmd: 'unplugPort', port: { device: 'vser0', nr: -1 } }, /^port\.nr: /],
      [{ cmd: 'unplugPort', port: { device: 'vser0', nr: 1.5 } }, /^port\.nr: /],
      [{ cmd: 'hotplugPort', port: { driver: 'isa-serial' } }, /^port\.driver: /],
      [
        { cmd: 'createChardev', chardev: { id: 'c1', backend: { kind: 'tcp', port: [70000] } } },
        /^chardev\.backend\.port: /,
      ],
      [{ cmd: 'step', count: 0 }, /^count: /],
      [
        { cmd: 'writeHost', port: { device: 'vser0', nr: 1 }, data: 'x'.repeat((1 << 20) + 1) },
        /^data: /,
      ],
    ];
    for (const [input, message] of cases) {
      const r = parseCommand(input);
      expect(r.ok, JSON.stringify(input)?.slice(0, 80)).toBe(false);
      if (!r.ok) {
        expect(r.error.kind).toBe('InvalidRequest');
        expect(r.error.message).toMatch(message);
        expect(r.error.message).not.toContain('\n');
      }
    }
  });

  it('has a result schema for every command', () => {
    const names = CommandSchema.options.map((o) => o.shape.cmd.value);
    expect(Object.keys(ResultSchemas).sort()).toEqual([...names].sort());
  });
});

describe('answers', () => {
  it('passes good answers and the engine’s refusals through', () => {
    expect(checkAnswer('writeHost', { ok: true, value: { written: 3 } })).toEqual({
      ok: true,
      value: { written: 3 },
    });
    const refused = fail('Refused', 'virtio-serial-bus: A port already exists at id 1');
    expect(checkAnswer('hotplugPort', refused)).toEqual(refused);
  });

  it('turns an answer that breaks the contract into an Internal error, never a half object', () => {
    const r = checkAnswer('writeHost', { ok: true, value: { written: 'three' } });
    expect(r).toMatchObject({ ok: false, error: { kind: 'Internal' } });
    if (!r.ok)
      expect(r.error.message).toMatch(/^answer to writeHost broke the contract: value\.written/);
  });

  it('keeps error messages to one line (no stack traces)', () => {
    const r = fail('Internal', 'boom\n    at foo (x.js:1:1)\n    at bar');
    expect(r.error.message).toBe('boom');
  });
});

describe('envelopes and batches', () => {
  it('checks the WebSocket envelopes both ways', () => {
    expect(
      ClientMessageSchema.safeParse({ t: 'req', id: 1, command: { cmd: 'hello' } }).success,
    ).toBe(true);
    expect(ClientMessageSchema.safeParse({ t: 'ack', seq: 3 }).success).toBe(true);
    expect(ClientMessageSchema.safeParse({ t: 'ack', seq: 0 }).success).toBe(false);
    expect(ClientMessageSchema.safeParse({ t: 'eval', code: '1' }).success).toBe(false);
    expect(ServerMessageSchema.safeParse({ t: 'batch', batch: batch() }).success).toBe(true);
    expect(
      ServerMessageSchema.safeParse({ t: 'batch', batch: { ...batch(), seq: 'x' } }).success,
    ).toBe(false);
  });

  it('validates events and samples inside a batch', () => {
    const event = {
      seq: 1,
      time: 1,
      kind: 'host-open',
      device: 'vser0',
      nr: 1,
      port: 'test1',
      direction: null,
      bytes: null,
      rule: null,
      text: 'test1: host connected',
    };
    expect(BatchSchema.safeParse(batch({ events: [event as never] })).success).toBe(true);
    expect(
      BatchSchema.safeParse(batch({ events: [{ ...event, kind: 'reboot' } as never] })).success,
    ).toBe(false);
    const sample = {
      t: 2,
      dt: 200,
      ports: [{ key: 'vser0:1', toGuest: 10, toHost: 0, totalToGuest: 10, totalToHost: 0 }],
    };
    expect(BatchSchema.safeParse(batch({ samples: [sample] })).success).toBe(true);
    expect(BatchSchema.safeParse(batch({ samples: [{ ...sample, dt: 0 }] })).success).toBe(false);
  });
});
