/**
 * `vmchan follow FILE --port NAME [--raw|--hex|--text]`: the reassembled
 * conversation of one port, like Wireshark's Follow Stream.
 */
import type { Command } from 'commander';
import { openCapture } from '../core/capture/pcapng-reader.js';
import { CaptureError } from '../core/capture/error.js';
import { followCapture, followHex, followRaw, followText } from '../core/capture/follow.js';
import type { Direction } from '../core/capture/record.js';
import { UsageError } from './errors.js';
import { writeOut } from './output.js';

interface FollowOptions {
  port: string;
  device?: string;
  raw?: boolean;
  hex?: boolean;
  text?: boolean;
  direction?: string;
}

const DIRECTIONS: Record<string, Direction> = {
  h2g: 'host-to-guest',
  'host-to-guest': 'host-to-guest',
  g2h: 'guest-to-host',
  'guest-to-host': 'guest-to-host',
};

export function registerFollow(program: Command): void {
  program
    .command('follow')
    .description('show the reassembled conversation of one port, both directions marked')
    .argument('<file>', 'a pcapng file written by vmchan')
    .requiredOption(
      '-p, --port <port>',
      'the port: its name (test1), its label (vport0p2) or its number',
    )
    .option(
      '-d, --device <device>',
      'the device, when several have a port with that number (vser0)',
    )
    .option('--text', 'text, non-printable bytes as "." (the default)')
    .option('--hex', 'a hex dump with direction markers')
    .option('--raw', 'the raw bytes of one direction on stdout (with --direction)')
    .option('--direction <dir>', 'for --raw: h2g (host-to-guest) or g2h (guest-to-host)', 'g2h')
    .addHelpText(
      'after',
      `
In --text and --hex, "H>" marks bytes the host sent to the guest and "G>"
bytes the guest sent to the host.

Examples:
  vmchan follow lab.pcapng --port test1
  vmchan follow lab.pcapng --port test2 --raw --direction g2h > from-guest.bin`,
    )
    .action(async (file: string, options: FollowOptions) => {
      const modes = [options.raw, options.hex, options.text].filter(Boolean).length;
      if (modes > 1) throw new UsageError('choose one of --raw, --hex and --text');
      const direction = DIRECTIONS[options.direction ?? 'g2h'];
      if (direction === undefined) {
        throw new UsageError(`--direction expects h2g or g2h, got '${options.direction}'`);
      }
      const reader = await openCapture(file);
      if (reader instanceof CaptureError) throw new Error(reader.toString());
      try {
        const port = /^\d+$/.test(options.port) ? Number(options.port) : options.port;
        const stream = followCapture(reader, { device: options.device, port });
        if (stream instanceof CaptureError) throw new Error(stream.toString());
        if (options.raw) {
          await writeOut(followRaw(stream, direction));
        } else {
          await writeOut(options.hex ? followHex(stream) : followText(stream));
        }
        if (stream.truncated)
          process.stderr.write('vmchan: the stream was cut at the size limit\n');
      } finally {
        reader.close();
      }
    });
}
