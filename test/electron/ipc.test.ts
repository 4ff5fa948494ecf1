/**
 * The IPC wiring without a window: handlers called with fake events. A
 * request or an ack from a foreign frame, or with a malformed payload, is
 * refused; a good one reaches the service.
 */
import { describe, expect, it, vi } from 'vitest';
import { ApiService } from '../../core/api/server/service.js';
import { IPC, type MenuAction } from '../../core/api/contract/contract.js';
import { ApiClient } from '../../core/api/browser/client.js';
import {
  APP_ENTRY,
  checkedBatch,
  createIpcHandlers,
  isAppUrl,
  sendMenuMessage,
  type IpcEventLike,
  type MenuTargetLike,
} from '../../electron/ipc.js';
import type { Reach } from '../../core/api/contract/reach.js';

const sender = { id: 1 };
const fromApp: IpcEventLike = { senderFrame: { url: APP_ENTRY }, sender };
const foreign = (url: string): IpcEventLike => ({ senderFrame: { url }, sender });

function handlers() {
  const execute = vi.fn(async (command: unknown) => ({ ok: true as const, value: command }));
  const acks: number[] = [];
  const log: string[] = [];
  const h = createIpcHandlers({
    execute,
    ackFor: (s) => (s === sender ? (seq: number) => (acks.push(seq), true) : undefined),
    log: (line) => log.push(line),
  });
  return { h, execute, acks, log };
}

describe('IPC sender checks', () => {
  it('knows the app’s own frames', () => {
    expect(isAppUrl('app://vmchan/index.html')).toBe(true);
    expect(isAppUrl('app://vmchan/')).toBe(true);
    for (const url of [
      'https://vmchan/index.html',
      'app://evil/index.html',
      'app://vmchan.evil.example/index.html',
      'app://user:pw@vmchan/index.html',
      'file:///usr/lib/vmchan/index.html',
      'http://127.0.0.1:8080/',
      'devtools://devtools/bundled/inspector.html',
      'about:blank',
      '',
      'not a url',
    ]) {
      expect(isAppUrl(url), url).toBe(false);
    }
    expect(isAppUrl(undefined)).toBe(false);
  });

  it('refuses a request from a foreign frame without running it', async () => {
    const { h, execute, log } = handlers();
    for (const event of [
      foreign('https://evil.example/'),
      foreign('file:///tmp/x.html'),
      { senderFrame: null, sender },
    ]) {
      const r = await h.request(event, { cmd: 'unplugPort', port: { device: 'vser0', nr: 1 } });
      expect(r).toEqual({
        ok: false,
        error: { kind: 'Refused', message: 'requests are taken only from the app’s own page' },
      });
    }
    expect(execute).not.toHaveBeenCalled();
    expect(log).toHaveLength(3);
    expect(log[0]).toBe('request from a foreign frame refused (https://evil.example/)');
  });

  it('ignores acks from a foreign frame and malformed acks', () => {
    const { h, acks, log } = handlers();
    h.ack(foreign('https://evil.example/'), 3);
    h.ack(fromApp, 'three');
    h.ack(fromApp, -1);
    h.ack(fromApp, 1.5);
    h.ack(fromApp, { seq: 3 });
    expect(acks).toEqual([]);
    expect(log).toHaveLength(5);
    h.ack(fromApp, 3);
    expect(acks).toEqual([3]);
  });

  it('checks batches before they go to a window', () => {
    const log: string[] = [];
    const bad = { seq: 0 } as never;
    expect(checkedBatch(bad, (l) => log.push(l))).toBeNull();
    expect(log[0]).toMatch(/^batch not sent, it breaks the contract: seq: /);
  });
});

describe('IPC into the real service', () => {
  it('runs a request from the app’s frame, refuses a malformed one with the schema’s words', async () => {
    const service = await ApiService.create({ face: 'electron', dialogs: true, lab: 'empty' });
    try {
      const h = createIpcHandlers({
        execute: (c) => service.execute(c),
        ackFor: () => undefined,
        log: () => {},
      });
      expect(await h.request(fromApp, { cmd: 'hello' })).toMatchObject({
        ok: true,
        value: { app: 'vmchan', version: expect.any(String), face: 'electron', dialogs: true },
      });
      expect(await h.request(fromApp, { cmd: 'createDevice', device: { id: 'vser0' } })).toEqual({
        ok: true,
        value: { name: 'vser0', bus: 'vser0.0' },
      });
      // malformed: refused by the schema, nothing reaches the engine
      expect(await h.request(fromApp, undefined)).toEqual({
        ok: false,
        error: {
          kind: 'InvalidRequest',
          message: 'Invalid input: expected object, received undefined',
        },
      });
      expect(
        await h.request(fromApp, {
          cmd: 'hotplugPort',
          port: { driver: 'virtserialport', nr: '1; rm -rf /' },
        }),
      ).toEqual({
        ok: false,
        error: {
          kind: 'InvalidRequest',
          message: 'port.nr: Invalid input: expected number, received string',
        },
      });
      expect(
        (await service.execute({ cmd: 'getTopology' })) as { value: { ports: unknown[] } },
      ).toMatchObject({
        value: { ports: [] },
      });
      // a foreign frame cannot even say hello
      expect(await h.request(foreign('https://evil.example/'), { cmd: 'hello' })).toMatchObject({
        ok: false,
        error: { kind: 'Refused' },
      });
      expect((await service.execute({ cmd: 'getTopology' })).ok).toBe(true);
    } finally {
      await service.close();
    }
  });
});

describe('menu messages (main to window)', () => {
  const frame = (url: string, destroyed = false) => {
    const sent: [string, unknown][] = [];
    const target: MenuTargetLike = {
      url,
      isDestroyed: () => destroyed,
      send: (channel, payload) => sent.push([channel, payload]),
    };
    return { target, sent };
  };

  it('sends Attach and Detach (and a chosen file) to the app’s own frame, on the menu channel', () => {
    const { target, sent } = frame(APP_ENTRY);
    const log: string[] = [];
    expect(sendMenuMessage(target, 'attach', undefined, (l) => log.push(l))).toBe(true);
    expect(sendMenuMessage(target, 'detach', undefined, (l) => log.push(l))).toBe(true);
    expect(sendMenuMessage(target, 'open-capture', '/tmp/a.pcapng', (l) => log.push(l))).toBe(true);
    expect(sent).toEqual([
      [IPC.menu, { action: 'attach' }],
      [IPC.menu, { action: 'detach' }],
      [IPC.menu, { action: 'open-capture', path: '/tmp/a.pcapng' }],
    ]);
    expect(log).toEqual([]);
  });

  it('never sends to a foreign or destroyed frame', () => {
    const log: string[] = [];
    for (const url of ['https://evil.example/', 'file:///tmp/x.html', 'about:blank', '']) {
      const { target, sent } = frame(url);
      expect(sendMenuMessage(target, 'attach', undefined, (l) => log.push(l))).toBe(false);
      expect(sent).toEqual([]);
    }
    expect(log[0]).toBe('menu action attach not sent to a foreign frame (https://evil.example/)');
    expect(log).toHaveLength(4);
    const gone = frame(APP_ENTRY, true);
    expect(sendMenuMessage(gone.target, 'detach', undefined, (l) => log.push(l))).toBe(false);
    expect(sendMenuMessage(null, 'detach', undefined, (l) => log.push(l))).toBe(false);
    expect(gone.sent).toEqual([]);
    expect(log).toHaveLength(4);
  });

  it('refuses a message that breaks the contract', () => {
    const { target, sent } = frame(APP_ENTRY);
    const log: string[] = [];
    expect(sendMenuMessage(target, 'attach-vm' as MenuAction, undefined, (l) => log.push(l))).toBe(
      false,
    );
    expect(sendMenuMessage(target, 'open-capture', '', (l) => log.push(l))).toBe(false);
    expect(sent).toEqual([]);
    expect(log).toHaveLength(2);
    expect(log[0]).toMatch(/^menu action not sent, it breaks the contract: action: /);
  });

  it('the window’s client takes Attach and Detach and drops anything else', () => {
    const listeners: ((raw: unknown) => void)[] = [];
    const client = new ApiClient({
      request: async () => ({ ok: true, value: null }),
      ack: () => {},
      onBatch: () => () => {},
      onClose: () => () => {},
      onMenu: (l) => (listeners.push(l), () => {}),
    });
    const got: unknown[] = [];
    client.onMenu((m) => got.push(m));
    const { target, sent } = frame(APP_ENTRY);
    sendMenuMessage(target, 'attach', undefined, () => {});
    sendMenuMessage(target, 'detach', undefined, () => {});
    for (const [, payload] of sent) listeners[0]!(payload);
    listeners[0]!({ action: 'format-disk' });
    listeners[0]!('attach');
    expect(got).toEqual([{ action: 'attach' }, { action: 'detach' }]);
  });
});

describe('item 1: paths and listening addresses only as the person chose them', () => {
  it('refuses a command that names a file nobody chose in a dialog, and runs it once confirmed', async () => {
    const execute = vi.fn(async (command: unknown) => ({ ok: true as const, value: command }));
    const asked: Reach[][] = [];
    const chosen = new Set(['/home/u/picked.pcapng']);
    const h = createIpcHandlers({
      execute,
      ackFor: () => undefined,
      log: () => {},
      confirmReach: async (reach) => {
        asked.push(reach);
        return reach.every((r) => r.kind !== 'listen' && chosen.has(r.target));
      },
    });
    expect(await h.request(fromApp, { cmd: 'saveCapture', path: '/home/u/.bashrc' })).toEqual({
      ok: false,
      error: {
        kind: 'Refused',
        message: 'not chosen in a file dialog: write the file /home/u/.bashrc',
      },
    });
    expect(
      await h.request(fromApp, {
        cmd: 'createChardev',
        chardev: { id: 't', backend: { kind: 'tcp', host: '0.0.0.0', port: 4555 } },
      }),
    ).toEqual({
      ok: false,
      error: {
        kind: 'Refused',
        message: 'not chosen in a file dialog: listen for connections on 0.0.0.0',
      },
    });
    expect(execute).not.toHaveBeenCalled();
    expect(
      (await h.request(fromApp, { cmd: 'saveCapture', path: '/home/u/picked.pcapng' })).ok,
    ).toBe(true);
    // Commands that reach nothing outside the lab are never asked about.
    expect((await h.request(fromApp, { cmd: 'startCapture' })).ok).toBe(true);
    expect(asked).toHaveLength(3);
  });

  it('refuses every reaching command when the shell gives no way to confirm', async () => {
    const { h, execute } = handlers();
    const r = await h.request(fromApp, { cmd: 'openCapture', path: '/etc/shadow' });
    expect(r).toEqual({
      ok: false,
      error: { kind: 'Refused', message: 'not chosen in a file dialog: read the file /etc/shadow' },
    });
    expect(execute).not.toHaveBeenCalled();
  });
});
