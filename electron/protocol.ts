/**
 * The app:// protocol: the window's page and its files come from the built
 * renderer directory only, with the app's CSP on every response. Nothing
 * outside that directory can be named (`..`, encoded slashes), and any
 * other host than `vmchan` is refused.
 */
import { readFile } from 'node:fs/promises';
import { SECURITY_HEADERS, contentType, staticPath } from '../core/api/server/csp.js';
import { APP_HOST, APP_SCHEME } from './ipc.js';

export interface AppResponse {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array | string;
}

/** What `app://vmchan/<path>` answers, read from `root`. */
export async function appResponse(url: string, root: string): Promise<AppResponse> {
  const refuse = (status: number, text: string): AppResponse => ({
    status,
    headers: { ...SECURITY_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' },
    body: text,
  });
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return refuse(400, 'bad URL');
  }
  if (u.protocol !== `${APP_SCHEME}:` || u.host !== APP_HOST) return refuse(403, 'not the app');
  const file = staticPath(root, u.pathname);
  if (file === null) return refuse(404, 'not found');
  try {
    const body = await readFile(file);
    return {
      status: 200,
      headers: { ...SECURITY_HEADERS, 'Content-Type': contentType(file) },
      body: new Uint8Array(body.buffer, body.byteOffset, body.byteLength),
    };
  } catch {
    return refuse(404, 'not found');
  }
}
