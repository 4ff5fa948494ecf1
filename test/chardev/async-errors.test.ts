/**
 * Issue 13 item 5: no backend's asynchronous error can end the process.
 * Every backend routes the errors of its OS resources (listener, socket,
 * stream, fd reads) through one path, BackendEndpoint.failed(): counted,
 * kept as text, and said as a notice; `failures` shows them. Here an error
 * is emitted on each open backend's real resources (injectAsyncError emits
 * 'error' on them, as the OS would) and the process is still here, with the
 * failure visible. file has no async resource: its real write failure
 * (/dev/full, ENOSPC) takes the same path.
 *
 * And the crash that started it: `udp,...,port=0` made Node's dgram throw
 * ERR_SOCKET_BAD_PORT from inside a callback; every face now refuses it
 * with a clear message before anything opens.
 */
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { chardevKinds } from '../../core/chardev/kinds/index.js';
import { backendFromForm } from '../../core/chardev/kinds/app-spec.js';
import type { BackendEndpoint, PtyChardev } from '../../core/chardev/index.js';
import { isMux, type OpenChardev } from '../../core/chardev/index.js';
import type { ChardevBackend } from '../../core/machine/topology.js';
import { parseQemuArgs } from '../../core/machine/index.js';
import { chardevFromQmp } from '../../core/monitor/chardev-spec.js';
import { JsonMessageParser } from '../../core/monitor/json-lexer.js';
import { QDict } from '../../core/monitor/qobject.js';
import { QemuError } from '../../core/base/qemu-error.js';
import { lab, mkfifo, spec, tempDir, TestFrontend, waitFor } from './helpers.js';

const opened: OpenChardev[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.close()));
});

function endpoint(c: OpenChardev): BackendEndpoint {
  return isMux(c) ? c.base : c;
}

/** One backend of each openable kind, on real OS resources. */
async function openEach(): Promise<Map<string, { c: BackendEndpoint; notices: string[] }>> {
  const dir = tempDir();
  const out = new Map<string, { c: BackendEndpoint; notices: string[] }>();
  const add = async (name: string, backend: ChardevBackend): Promise<BackendEndpoint> => {
    const { open, notices } = lab({ runtimeDir: dir });
    const c = await open(spec(name, backend));
    opened.push(c);
    out.set(name, { c: endpoint(c), notices });
    return endpoint(c);
  };
  await add('socket', {
    kind: 'socket',
    address: { type: 'unix', path: 's.sock' },
    server: true,
    wait: false,
    nodelay: false,
  });
  mkfifo(path.join(dir, 'p'));
  await add('pipe', { kind: 'pipe', path: 'p' });
  await add('file', { kind: 'file', path: '/dev/full', append: false });
  const pty = (await add('pty', { kind: 'pty' })) as PtyChardev;
  await add('null', { kind: 'null' });
  await add('ringbuf', { kind: 'ringbuf', size: 4096 });
  await add('udp', { kind: 'udp', host: '127.0.0.1', port: '9' });
  const { PassThrough } = await import('node:stream');
  {
    const { open, notices } = lab({
      stdio: { input: new PassThrough(), output: new PassThrough() },
    });
    const c = await open(spec('stdio', { kind: 'stdio' }));
    opened.push(c);
    out.set('stdio', { c: endpoint(c), notices });
  }
  await add('serial', { kind: 'serial', path: pty.slavePath });
  return out;
}

describe('H1 asynchronous backend errors are counted and shown, never fatal (issue 13 item 5)', () => {
  test('an injected error on each backend kind leaves the process alive with the failure visible', async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (e: unknown): void => void uncaught.push(e);
    process.on('uncaughtException', onUncaught);
    try {
      const each = await openEach();
      // Every registered kind that opens is covered ('other' refuses to open).
      const kinds = chardevKinds()
        .map((k) => k.kind)
        .filter((k) => k !== 'other');
      expect([...each.keys()].sort()).toEqual([...kinds].sort());

      for (const [name, { c, notices }] of each) {
        if (name === 'file') {
          // /dev/full: every write fails with ENOSPC, as a full disk would.
          c.attach(new TestFrontend());
          expect(c.write(new TextEncoder().encode('lost'))).toBe(4);
          expect(c.counters.dropped['send-failed'], name).toBe(4);
        } else {
          const reached = c.injectAsyncError(
            Object.assign(new Error('EIO injected'), { code: 'EIO' }),
          );
          if (name === 'null' || name === 'ringbuf') {
            // No OS resource, so nothing can fail asynchronously.
            expect(reached, name).toBe(0);
            expect(c.failures, name).toEqual({ count: 0, last: null });
            continue;
          }
          expect(reached, name).toBeGreaterThan(0);
        }
        expect(c.failures.count, name).toBeGreaterThan(0);
        expect(c.failures.last, name).toMatch(name === 'file' ? /ENOSPC|No space/ : /EIO/);
        expect(
          notices.some((n) => n.startsWith(`chardev ${name}: `)),
          name,
        ).toBe(true);
      }
      // The listening socket still serves after its listener reported an error.
      const sock = each.get('socket')!.c;
      const net = await import('node:net');
      const addr = (sock as unknown as { listeningOn: { path: string } }).listeningOn.path;
      const client = net.createConnection({ path: addr });
      await waitFor(() => sock.connected, 'a client accepted after the listener error');
      client.destroy();
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
    }
  });
});

describe('H1 udp port=0 is refused with a clear message on every face (issue 13 item 5)', () => {
  const message = 'chardev: udp: remote port 0 names no destination (1 to 65535)';

  test('command line', () => {
    const r = parseQemuArgs(['-chardev', 'udp,id=u,host=127.0.0.1,port=0']);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.message).toBe(message);
    const big = parseQemuArgs(['-chardev', 'udp,id=u,port=70000']);
    if (!big.ok)
      expect(big.error.message).toBe(
        'chardev: udp: remote port 70000 is out of range (1 to 65535)',
      );
    expect(big.ok).toBe(false);
  });

  test('QMP chardev-add', () => {
    const json =
      '{"id": "u", "backend": {"type": "udp", "data": {"remote": {"type": "inet", "data": {"host": "127.0.0.1", "port": "0"}}}}}';
    const [message0] = new JsonMessageParser().feed(new TextEncoder().encode(json));
    const args = (message0 as { value: QDict }).value;
    expect(args).toBeInstanceOf(QDict);
    const r = chardevFromQmp(args);
    expect(r).toBeInstanceOf(QemuError);
    expect((r as QemuError).message).toBe(message);
  });

  test('libvirt import', async () => {
    const { topologyFromLibvirtXml } = await import('../../core/machine/index.js');
    const xml = `<domain><devices><controller type='virtio-serial' index='0'/>
      <channel type='udp'><source mode='connect' host='127.0.0.1' service='0'/>
      <target type='virtio' name='u'/></channel></devices></domain>`;
    const r = topologyFromLibvirtXml(xml);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.message).toContain(message);
  });

  test('a spec that reaches the factory anyway (a saved topology) fails to open, the process stays', async () => {
    const { ctx } = lab();
    const { createChardev, isChardevError } = await import('../../core/chardev/index.js');
    const r = await createChardev(spec('u', { kind: 'udp', host: '127.0.0.1', port: '0' }), ctx);
    expect(isChardevError(r)).toBe(true);
  });

  test('the app refuses it too (its tcp/udp ports are checked by the kind record)', () => {
    expect(backendFromForm('t', { kind: 'tcp', port: -1 }, (p) => p)).toBe(
      'backend.port: must be at least 0',
    );
  });
});
