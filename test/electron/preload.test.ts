/**
 * The preload, compiled as Electron loads it (CommonJS) and run against a
 * fake `electron`: it exposes one object, `vmchan`, whose functions use the
 * channels of core/api/contract/contract.ts and nothing else.
 */
import * as fs from 'node:fs';
import * as vm from 'node:vm';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { IPC } from '../../core/api/contract/contract.js';

const source = fs.readFileSync(new URL('../../electron/preload.cts', import.meta.url), 'utf8');

function load() {
  const exposed: [string, Record<string, unknown>][] = [];
  const invoked: [string, unknown][] = [];
  const sent: [string, unknown][] = [];
  const listeners = new Map<string, ((event: unknown, payload: unknown) => void)[]>();
  const electron = {
    contextBridge: {
      exposeInMainWorld: (name: string, api: Record<string, unknown>) => exposed.push([name, api]),
    },
    ipcRenderer: {
      invoke: async (channel: string, payload: unknown) => (
        invoked.push([channel, payload]),
        { ok: true, value: null }
      ),
      send: (channel: string, payload: unknown) => sent.push([channel, payload]),
      on: (channel: string, l: (event: unknown, payload: unknown) => void) =>
        listeners.set(channel, [...(listeners.get(channel) ?? []), l]),
      removeListener: (channel: string, l: (event: unknown, payload: unknown) => void) =>
        listeners.set(
          channel,
          (listeners.get(channel) ?? []).filter((x) => x !== l),
        ),
    },
  };
  const js = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 },
    fileName: 'preload.cts',
  }).outputText;
  const required: string[] = [];
  const sandbox = {
    require: (name: string) => {
      required.push(name);
      if (name !== 'electron') throw new Error(`a sandboxed preload cannot require ${name}`);
      return electron;
    },
    exports: {},
    module: { exports: {} },
  };
  vm.runInNewContext(
    `(function (require, exports, module) {${js}\n})(require, exports, module)`,
    sandbox,
  );
  return { exposed, invoked, sent, listeners, required };
}

describe('the preload', () => {
  it('exposes exactly one object, window.vmchan, with four functions', () => {
    const { exposed, required } = load();
    expect(required).toEqual(['electron']);
    expect(exposed).toHaveLength(1);
    expect(exposed[0]![0]).toBe('vmchan');
    expect(Object.keys(exposed[0]![1]).sort()).toEqual(['ack', 'onBatch', 'onMenu', 'request']);
    for (const f of Object.values(exposed[0]![1])) expect(typeof f).toBe('function');
  });

  it('uses the contract’s channels', async () => {
    const { exposed, invoked, sent, listeners } = load();
    const api = exposed[0]![1] as {
      request(c: unknown): Promise<unknown>;
      ack(n: unknown): void;
      onBatch(l: (b: unknown) => void): () => void;
      onMenu(l: (b: unknown) => void): () => void;
    };
    await api.request({ cmd: 'hello' });
    expect(invoked).toEqual([[IPC.request, { cmd: 'hello' }]]);
    api.ack(4);
    api.ack('x');
    expect(sent).toEqual([[IPC.ack, 4]]);
    const got: unknown[] = [];
    const off = api.onBatch((b) => got.push(b));
    api.onMenu((m) => got.push(m));
    listeners.get(IPC.batch)![0]!({ sender: 'hidden' }, { seq: 1 });
    listeners.get(IPC.menu)![0]!({}, { action: 'import' });
    expect(got).toEqual([{ seq: 1 }, { action: 'import' }]); // the IPC event itself never reaches the page
    off();
    expect(listeners.get(IPC.batch)).toEqual([]);
  });
});
