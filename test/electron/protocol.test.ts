import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appResponse } from '../../electron/protocol.js';

let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-app-'));
  fs.writeFileSync(path.join(root, 'index.html'), '<!doctype html>');
  fs.mkdirSync(path.join(root, 'assets'));
  fs.writeFileSync(path.join(root, 'assets', 'index.js'), 'export {}');
  fs.writeFileSync(path.join(os.tmpdir(), 'vmchan-secret.txt'), 'secret');
});
afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(path.join(os.tmpdir(), 'vmchan-secret.txt'), { force: true });
});

describe('the app:// protocol', () => {
  it('serves the renderer with the CSP', async () => {
    const r = await appResponse('app://vmchan/index.html', root);
    expect(r.status).toBe(200);
    expect(r.headers['Content-Type']).toBe('text/html; charset=utf-8');
    expect(r.headers['Content-Security-Policy']).toMatch(
      /^default-src 'self'; script-src 'self'; style-src 'self'/,
    );
    expect(r.headers['Content-Security-Policy']).not.toMatch(/unsafe/);
    expect((await appResponse('app://vmchan/', root)).status).toBe(200);
    expect((await appResponse('app://vmchan/assets/index.js', root)).headers['Content-Type']).toBe(
      'text/javascript; charset=utf-8',
    );
  });

  it('names nothing outside the renderer directory, and no other host', async () => {
    for (const url of [
      'app://vmchan/../vmchan-secret.txt',
      'app://vmchan/%2e%2e/vmchan-secret.txt',
      'app://vmchan/assets/..%2f..%2fvmchan-secret.txt',
      'app://vmchan/assets%5c..%5c..%5cvmchan-secret.txt',
      'app://vmchan/nope.js',
    ]) {
      const r = await appResponse(url, root);
      expect(r.status, url).toBe(404);
    }
    expect((await appResponse('app://other/index.html', root)).status).toBe(403);
    expect((await appResponse('https://vmchan/index.html', root)).status).toBe(403);
  });
});
