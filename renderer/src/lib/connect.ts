/**
 * The page's way to the engine: the Electron preload's `window.vmchan` when
 * it is there, else the WebSocket of `vmchan serve` on the page's own
 * origin (the token from the page URL; the server's cookie works too).
 */
import { ApiClient, ipcTransport, webSocketTransport } from '../../../core/api/client.js';
import type { VmchanBridge } from '../../../core/api/contract.js';

export interface Connection {
  client: ApiClient;
  face: 'electron' | 'web';
}

declare global {
  interface Window {
    vmchan?: VmchanBridge;
  }
}

export function connect(): Connection {
  if (window.vmchan !== undefined) {
    return { client: new ApiClient(ipcTransport(window.vmchan)), face: 'electron' };
  }
  const token = new URLSearchParams(location.search).get('token') ?? '';
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const socket = new WebSocket(
    `${scheme}://${location.host}/api?token=${encodeURIComponent(token)}`,
  );
  return { client: new ApiClient(webSocketTransport(socket)), face: 'web' };
}
