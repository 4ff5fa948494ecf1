/**
 * The preload of the sandboxed window (CommonJS: a sandboxed preload cannot
 * load ES modules, nor any file but 'electron'). It exposes exactly one
 * object, `window.vmchan`, with four functions; the page never touches
 * ipcRenderer itself. The channel names are those of IPC in
 * core/api/contract/contract.ts (test/electron/preload.test.ts keeps them in step);
 * checking the messages is the main process's and the client's job.
 */
import type { IpcRendererEvent } from 'electron';
// eslint-disable-next-line @typescript-eslint/no-require-imports -- a sandboxed preload is CommonJS and may load only 'electron'
import electron = require('electron');

const { contextBridge, ipcRenderer } = electron;

const REQUEST = 'vmchan:request';
const ACK = 'vmchan:ack';
const BATCH = 'vmchan:batch';
const MENU = 'vmchan:menu';

function subscribe(channel: string, listener: (payload: unknown) => void): () => void {
  const handler = (_event: IpcRendererEvent, payload: unknown): void => listener(payload);
  ipcRenderer.on(channel, handler);
  return () => {
    ipcRenderer.removeListener(channel, handler);
  };
}

contextBridge.exposeInMainWorld('vmchan', {
  request: (command: unknown): Promise<unknown> => ipcRenderer.invoke(REQUEST, command),
  ack: (seq: number): void => {
    if (Number.isInteger(seq)) ipcRenderer.send(ACK, seq);
  },
  onBatch: (listener: (batch: unknown) => void): (() => void) => subscribe(BATCH, listener),
  onMenu: (listener: (action: unknown) => void): (() => void) => subscribe(MENU, listener),
});
