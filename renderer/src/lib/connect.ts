/**
 * The page's way to the engine: the Electron preload's `window.vmchan` when
 * it is there, else the WebSocket of `vmchan serve` on the page's own
 * origin. The token comes in the URL's fragment (never sent to a server),
 * is kept in sessionStorage (a reload keeps working) and leaves the address
 * bar; it rides as a WebSocket subprotocol and the X-Vmchan-Token header.
 */
import {
  ApiClient,
  apiProtocols,
  ipcTransport,
  webSocketTransport,
} from '../../../core/api/browser/client.js';
import type { VmchanBridge } from '../../../core/api/contract/contract.js';

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
  const token = pageToken();
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const socket = new WebSocket(`${scheme}://${location.host}/api`, apiProtocols(token));
  return {
    client: new ApiClient(webSocketTransport(socket, { confirm: (q) => window.confirm(q) })),
    face: 'web',
  };
}

const TOKEN_KEY = 'vmchan.token';

/** The token: from the fragment on first load (then removed from the address bar), else sessionStorage. */
export function pageToken(): string {
  const fromHash = new URLSearchParams(location.hash.replace(/^#/, '')).get('token');
  if (fromHash !== null && fromHash !== '') {
    sessionStorage.setItem(TOKEN_KEY, fromHash);
    history.replaceState(null, '', location.pathname + location.search);
    return fromHash;
  }
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

/** Fetch the capture with the token header and hand it to the browser as a download. */
export async function downloadCapture(): Promise<string | null> {
  const res = await fetch('capture.pcapng', { headers: { 'X-Vmchan-Token': pageToken() } });
  if (!res.ok) return (await res.text()).trim();
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = 'vmchan-capture.pcapng';
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return null;
}
