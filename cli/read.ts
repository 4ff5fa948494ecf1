/**
 * `vmchan read FILE [-Y FILTER] [-x]`: print a capture one line per record,
 * as `tshark -r FILE [-Y ...] [-x]` does for network captures.
 */
import type { Command } from 'commander';
import { openCapture } from '../core/capture/pcapng-reader.js';
import { isFilterError, parseFilter } from '../core/capture/filter.js';
import { detailTree, hexDump, summaryLine } from '../core/capture/format.js';
import { CaptureError } from '../core/capture/error.js';
import { UsageError } from './errors.js';
import { writeOut } from './output.js';

interface ReadOptions {
  displayFilter?: string;
  hex?: boolean;
  verbose?: boolean;
  ascii?: boolean;
  count?: string;
}

export function registerRead(program: Command): void {
  program
    .command('read')
    .description(
      'print a capture one line per record (number, time, port, direction, length, summary)',
    )
    .argument('<file>', 'a pcapng file written by vmchan (vmchan run -w, or the app)')
    .option(
      '-Y, --display-filter <filter>',
      "show only records matching a filter, e.g. 'port == test1 and dir == g2h'",
    )
    .option('-x, --hex', "add a hex and ASCII dump of each record's bytes")
    .option(
      '-V, --verbose',
      'print the detail tree of each record, with the decoded channel protocol (as tshark -V)',
    )
    .option('--ascii', 'use ASCII arrows (H->G, G->H) instead of H→G, G→H')
    .option('-c, --count <n>', 'stop after n records are printed')
    .addHelpText(
      'after',
      `
Filter language (the same as the app's filter bar):
  port == test1 | port == 2     dir == h2g | dir == g2h     kind == data|control|event
  len > 100                      contains "hello" | contains 01:02:ff
  time >= 1.5 (seconds since the first record)             device == vser0
  decoded channel protocols: proto == qga, qga.command == "guest-sync", qga.error.class,
  vdagent.type == CLIPBOARD, guestfs.proc == 1, text.line == "hello"
  combine with and/or/not (&&, ||, !) and parentheses

Direction: host-to-guest is "inbound" (H→G), guest-to-host "outbound" (G→H).

Examples:
  vmchan read lab.pcapng
  vmchan read lab.pcapng -Y 'port == test1 and kind == control' -x`,
    )
    .action(async (file: string, options: ReadOptions) => {
      await readCapture(file, options);
    });
}

async function readCapture(file: string, options: ReadOptions): Promise<void> {
  let limit = Infinity;
  if (options.count !== undefined) {
    if (!/^\d+$/.test(options.count))
      throw new UsageError(`--count expects a whole number, got '${options.count}'`);
    limit = Number(options.count);
  }
  let filter = null;
  if (options.displayFilter !== undefined) {
    const parsed = parseFilter(options.displayFilter);
    if (isFilterError(parsed)) {
      throw new UsageError(`${parsed.toString()}\n  ${options.displayFilter}\n  ${parsed.caret()}`);
    }
    filter = parsed;
  }
  const reader = await openCapture(file);
  if (reader instanceof CaptureError) throw new Error(reader.toString());
  try {
    for (const warning of reader.warnings)
      process.stderr.write(`vmchan: warning: ${warning.toString()}\n`);
    const numbers = filter ? reader.select(filter.test) : null;
    const total = numbers ? numbers.length : reader.count;
    let printed = 0;
    for (let i = 0; i < total && printed < limit; i++) {
      const n = numbers ? numbers[i]! : i;
      const record = reader.record(n);
      if (record instanceof CaptureError) throw new Error(record.toString());
      const rel = reader.relativeNs(n) / 1e9;
      let text = options.verbose
        ? detailTree(n + 1, rel, record, { ascii: options.ascii }) + '\n\n'
        : summaryLine(n + 1, rel, record, { ascii: options.ascii }) + '\n';
      if (options.hex && record.bytes.length > 0) text += hexDump(record.bytes) + '\n\n';
      if (!(await writeOut(text))) return; // the reader went away (vmchan read | head)
      printed++;
    }
  } finally {
    reader.close();
  }
}
