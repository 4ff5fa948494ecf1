/**
 * A QMP client in python3 that sends descriptors with its commands
 * (socket.send_fds: SCM_RIGHTS on the monitor's unix socket, as libvirt
 * does), for the H7 tests on vmchan and on the real QEMU. PRELUDE connects
 * to argv[1] and negotiates; `cmd(execute, fds, **args)` returns the reply,
 * `event(name)` waits for an event, `out(step, value)` prints one JSON line.
 * The steps every H7 test runs come next (COMMON_STEPS): getfd with and
 * without a descriptor, bad and replaced names, closefd, chardev-add on a
 * pipe's name and on a socketpair end's name (`host` is the other end).
 */
import { spawn } from 'node:child_process';
import { expect } from 'vitest';

export const PRELUDE = String.raw`
import json, os, socket, sys
m = socket.socket(socket.AF_UNIX); m.connect(sys.argv[1])
f = m.makefile('rb')
def reply():
    while True:
        r = json.loads(f.readline())
        if 'event' not in r: return r
def event(name):
    while True:
        r = json.loads(f.readline())
        if r.get('event') == name: return r
def cmd(execute, fds=(), **args):
    msg = json.dumps({'execute': execute, 'arguments': args} if args else {'execute': execute}).encode()
    if fds: socket.send_fds(m, [msg], list(fds))
    else: m.sendall(msg)
    return reply()
def out(step, value): print(json.dumps({'step': step, 'value': value}), flush=True)
reply(); cmd('qmp_capabilities')
`;

export const COMMON_STEPS = String.raw`
out('getfd without a descriptor', cmd('getfd', fdname='mine'))
host, passed = socket.socketpair()
out('getfd', cmd('getfd', [passed.fileno()], fdname='mine')); passed.close()
spare_r, spare_w = os.pipe()
out('getfd digit', cmd('getfd', [spare_r], fdname='1st'))
out('getfd tmp', cmd('getfd', [spare_r], fdname='tmp'))
out('getfd tmp again', cmd('getfd', [spare_w], fdname='tmp'))
out('closefd tmp', cmd('closefd', fdname='tmp'))
out('closefd tmp again', cmd('closefd', fdname='tmp'))
out('getfd pipe', cmd('getfd', [spare_r], fdname='notsock'))
addr = lambda name: {'type': 'socket', 'data': {'addr': {'type': 'fd', 'data': {'str': name}}, 'server': False}}
out('chardev-add pipe', cmd('chardev-add', id='bad', backend=addr('notsock')))
out('chardev-add', cmd('chardev-add', id='passed', backend=addr('mine')))
out('chardev-add again', cmd('chardev-add', id='again', backend=addr('mine')))
out('query-chardev', [c for c in cmd('query-chardev')['return'] if c['label'] == 'passed'])
`;

/** A running client: its steps once it exited, in order; `go()` writes a line to its stdin. */
export interface FdClient {
  go(): void;
  exited(): boolean;
  steps(): Promise<Array<[string, unknown]>>;
}

/** Run `script` (PRELUDE + steps) on the QMP socket `qmpPath`, with `args` after it. */
export function startFdClient(script: string, qmpPath: string, args: string[] = []): FdClient {
  const client = spawn('python3', ['-c', script, qmpPath, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  client.stdout.on('data', (c: Buffer) => (out += c.toString()));
  client.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const code = new Promise((resolve) => client.on('exit', resolve));
  return {
    go: () => client.stdin.end('go\n'),
    exited: () => client.exitCode !== null,
    steps: async () => {
      expect(await code).toBe(0);
      expect(err).toBe('');
      return out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { step: string; value: unknown })
        .map((s) => [s.step, s.value]);
    },
  };
}
