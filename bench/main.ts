/**
 * `npm run bench`: runs every benchmark group and prints each figure as a
 * ratio to a baseline measured in the same run. `npm run bench -- virtio`
 * runs only the groups whose names contain the word; a word that is a
 * group's whole name runs that group alone (`lab`, not `capture-lab`). `fuzz` (10,000,000
 * virtio-serial fuzz cases) and `load` (31 ports x 64 MiB each way) are long.
 * `ring-v86` measures the split ring against v86's (the v86 devDependency,
 * read at bench time: v86 as shipped; VMCHAN_V86_BUILD=stripped for a v86
 * with every debug call stripped). `--runs N` runs the chosen groups in N
 * fresh processes and ends with each figure's ratio run by run and its
 * median (bench/runs.ts).
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ResultTable, type Report } from './harness.js';
import { parseRuns, ROWS_FILE_ENV, runSeries } from './runs.js';

interface Group {
  name: string;
  load: () => Promise<(report: Report) => Promise<void> | void>;
}

const groups: Group[] = [
  { name: 'virtio', load: async () => (await import('./virtio.js')).benchVirtio },
  { name: 'ring-v86', load: async () => (await import('./ring-v86.js')).benchRingV86 },
  { name: 'serial', load: async () => (await import('./serial.js')).benchSerial },
  { name: 'capture', load: async () => (await import('./capture.js')).benchCapture },
  { name: 'lab', load: async () => (await import('./lab.js')).benchLab },
  {
    name: 'worker-guest',
    load: async () => (await import('./worker-guest.js')).benchWorkerGuest,
  },
  { name: 'lab-startup', load: async () => (await import('./lab.js')).benchLabStartup },
  { name: 'tap', load: async () => (await import('./tap.js')).benchTap },
  { name: 'fuzz', load: async () => (await import('./fuzz.js')).benchFuzz },
  { name: 'load', load: async () => (await import('./load.js')).benchLoad },
  {
    name: 'capture-extcap',
    load: async () => (await import('./capture-extcap.js')).benchCaptureExtcap,
  },
  {
    name: 'capture-app',
    load: async () => (await import('./capture-app.js')).benchCaptureApp,
  },
  {
    name: 'capture-lab',
    load: async () => (await import('./capture-lab.js')).benchCaptureLab,
  },
];

async function main(): Promise<void> {
  const parsed = parseRuns(process.argv.slice(2));
  if ('error' in parsed) {
    process.stderr.write(`bench: ${parsed.error}\n`);
    process.exitCode = 2;
    return;
  }
  const only = parsed.words;
  if (parsed.runs !== null) {
    process.exitCode = await runSeries(fileURLToPath(import.meta.url), only, parsed.runs);
    return;
  }
  const table = new ResultTable();
  const exact = groups.filter((g) => only.includes(g.name));
  for (const g of groups) {
    if (exact.length > 0 && !exact.includes(g)) continue;
    if (only.length > 0 && !only.some((w) => g.name.includes(w))) continue;
    process.stdout.write(`\n== ${g.name}\n`);
    const fn = await g.load();
    await fn(table.report);
  }
  // A run of a series (--runs): the parent reads the figures from here.
  const rowsFile = process.env[ROWS_FILE_ENV];
  if (rowsFile !== undefined) writeFileSync(rowsFile, JSON.stringify(table.rows));
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
