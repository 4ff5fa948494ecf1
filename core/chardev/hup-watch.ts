/**
 * Watch a unix socket for its peer's close (POLLHUP) without reading from it,
 * as QEMU's socket chardev does with its G_IO_HUP watch (tcp_chr_connect).
 *
 * Node reads a socket or stops reading it; it cannot poll for a hang-up
 * alone, and a socket paused because the guest is not taking data would
 * never notice that the host left. A small perl process (perl-base is
 * Essential in Debian, see tty-helper.ts) polls the inherited descriptor
 * with no events asked for, so only POLLHUP/POLLERR wake it: a half-close
 * (shutdown(SHUT_WR)) does not, a close does. It prints one line and exits,
 * and exits too when our end of its stdin closes (we stopped watching or
 * died). It lives only while a watch is needed.
 */
import { spawn } from 'node:child_process';
import type net from 'node:net';

const SCRIPT = `use IO::Poll qw(POLLIN POLLHUP POLLERR); $| = 1;
while (1) {
  my @p = (3, 0, 0, POLLIN);
  my $n = IO::Poll::_poll(-1, @p);
  if ($n < 0) { next if $!{EINTR}; exit 1; }
  if ($p[1] & (POLLHUP | POLLERR)) { print "HUP\\n"; exit 0; }
  if ($p[3]) { exit 0; }
}`;

/** A running watch; stop() ends it (idempotent). */
export interface HangUpWatch {
  stop(): void;
}

/**
 * Call `onHangUp` once when the peer of `socket` closes. `onUnavailable`
 * runs (once) when no watcher can run (perl missing): the caller falls back.
 */
export function watchHangUp(
  socket: net.Socket,
  onHangUp: () => void,
  onUnavailable: (reason: string) => void,
): HangUpWatch {
  let done = false;
  const child = spawn('perl', ['-e', SCRIPT], { stdio: ['pipe', 'pipe', 'ignore', socket] });
  const finish = (): void => {
    if (done) return;
    done = true;
    // It holds a copy of the socket: it must go for the peer to see our close.
    child.kill();
    child.stdin?.destroy();
    child.stdout?.destroy();
  };
  child.stdout?.on('data', (chunk: Buffer) => {
    if (!done && chunk.toString().includes('HUP')) {
      finish();
      onHangUp();
    }
  });
  child.on('error', (error) => {
    if (done) return;
    finish();
    onUnavailable(`cannot watch for the host's hang-up (perl: ${error.message})`);
  });
  child.stdin?.on('error', () => {}); // the helper exited first: nothing to tell it
  return { stop: finish };
}
