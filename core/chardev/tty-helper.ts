/**
 * The two terminal operations Node cannot do itself, done by a short-lived
 * perl process that inherits the fd and exits: unlocking a new pty and
 * finding its slave name (ioctl TIOCSPTLCK / TIOCGPTN), and putting a
 * terminal into raw mode (tcsetattr, as cfmakeraw).
 *
 * Why perl: it is Essential in Debian (perl-base, with POSIX::Termios), so
 * it is there wherever socat is; the helper lives for a few milliseconds at
 * open time and no process stays behind, unlike a socat or python pty relay,
 * and no native addon (node-pty) has to be built. The fd is handed over as
 * fd 3, not as stdin: libuv makes a child's fds 0-2 blocking, which would
 * change the shared file description of our non-blocking fd.
 */
import { spawn } from 'node:child_process';
import { chardevError, type ChardevError } from './chardev-error.js';

/** ioctl numbers differ on the architectures whose _IOW/_IOR bits are swapped. */
function ioctlNumbers(): { lock: number; number: number } {
  const swapped = ['ppc', 'ppc64', 'mips', 'mipsel', 'mips64', 'mips64el', 'sparc', 'sparc64'];
  return swapped.includes(process.arch)
    ? { lock: 0x80045431, number: 0x40045430 }
    : { lock: 0x40045431, number: 0x80045430 };
}

/** Linux's B115200 (perl's POSIX only knows the POSIX speeds, up to B38400). */
function b115200(): number {
  return process.arch === 'ppc' || process.arch === 'ppc64' ? 0o21 : 0o10002;
}

/** cfmakeraw on a handle, in perl. */
const MAKE_RAW = `
sub make_raw {
  my ($fd, $speed) = @_;
  my $t = POSIX::Termios->new;
  $t->getattr($fd) or die "tcgetattr: $!\\n";
  $t->setiflag($t->getiflag & ~(IGNBRK|BRKINT|PARMRK|ISTRIP|INLCR|IGNCR|ICRNL|IXON));
  $t->setoflag($t->getoflag & ~OPOST);
  $t->setlflag($t->getlflag & ~(ECHO|ECHONL|ICANON|ISIG|IEXTEN));
  $t->setcflag(($t->getcflag & ~(CSIZE|PARENB)) | CS8 | CREAD | CLOCAL);
  $t->setcc(VMIN, 1); $t->setcc(VTIME, 0);
  if ($speed) { $t->setispeed($speed); $t->setospeed($speed); }
  $t->setattr($fd, TCSANOW) or die "tcsetattr: $!\\n";
}
`;

function ptyScript(): string {
  const { lock, number } = ioctlNumbers();
  return `use strict; use POSIX qw(:termios_h);
${MAKE_RAW}
open(my $m, "+<&=", 3) or die "fd 3: $!\\n";
my $zero = pack("i", 0);
ioctl($m, ${lock}, $zero) or die "unlockpt: $!\\n";
my $n = pack("i", 0);
ioctl($m, ${number}, $n) or die "ptsname: $!\\n";
my $path = "/dev/pts/" . unpack("i", $n);
sysopen(my $s, $path, POSIX::O_RDWR() | POSIX::O_NOCTTY()) or die "open $path: $!\\n";
make_raw(fileno($s), 0);
close($s);
print "$path\\n";
`;
}

function rawScript(): string {
  return `use strict; use POSIX qw(:termios_h);
${MAKE_RAW}
make_raw(3, ${b115200()});
`;
}

function runPerl(script: string, fd: number, id: string): Promise<string | ChardevError> {
  return new Promise((resolve) => {
    const child = spawn('perl', ['-e', script], { stdio: ['ignore', 'pipe', 'pipe', fd] });
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (error: NodeJS.ErrnoException) => {
      resolve(
        error.code === 'ENOENT'
          ? chardevError(
              'MissingTool',
              'perl not found: apt-get install perl-base (vmchan uses it to set up terminals)',
              id,
            )
          : chardevError('OpenFailed', `terminal helper failed: ${error.message}`, id),
      );
    });
    child.on('close', (code) => {
      if (code === 0) resolve(out.trim());
      else
        resolve(
          chardevError('OpenFailed', `terminal helper failed: ${err.trim() || `exit ${code}`}`, id),
        );
    });
  });
}

/** Unlock the pty whose master is `masterFd`, set its slave raw, and return the slave path. */
export function preparePty(masterFd: number, id: string): Promise<string | ChardevError> {
  return runPerl(ptyScript(), masterFd, id);
}

/** Put the terminal `fd` in raw mode at 115200 8N1 (QEMU's tty_serial_init defaults). */
export async function makeRaw(fd: number, id: string): Promise<ChardevError | null> {
  const r = await runPerl(rawScript(), fd, id);
  return typeof r === 'string' ? null : r;
}
