/**
 * The client process of the cross-process lab bench (bench/lab.ts): it
 * connects to two unix sockets (`a` and `b`), moves bytes a -> b and then
 * b -> a, and prints a line as it starts and one with the seconds each
 * direction took,
 * so the lab (or the relay it is compared to) has a process of its own, as
 * it has beside a real guest and host program.
 *
 *   node dist/bench/lab-client.js A_PATH B_PATH BYTES WARMUP_BYTES [one-way]
 *
 * `one-way` moves (and warms up) a -> b only, for a path that carries one
 * direction (bench/worker-guest.ts).
 */
import { connect, transfer } from './socket-transfer.js';

async function main(): Promise<void> {
  const [aPath, bPath, bytesText, warmText, way] = process.argv.slice(2);
  const oneWay = way === 'one-way';
  if (aPath === undefined || bPath === undefined) {
    process.stderr.write('usage: lab-client A_PATH B_PATH BYTES WARMUP_BYTES [one-way]\n');
    process.exitCode = 2;
    return;
  }
  const bytes = Number(bytesText);
  const warm = Number(warmText ?? 0);
  const a = await connect(aPath);
  const b = await connect(bPath);
  if (warm > 0) {
    await transfer(a, b, warm);
    if (!oneWay) await transfer(b, a, warm);
  }
  // The parent reads its CPU clock at each line: before, between and after the two directions.
  process.stdout.write('go\n');
  const aToB = await transfer(a, b, bytes);
  process.stdout.write(`a->b ${aToB}\n`);
  if (oneWay) {
    a.destroy();
    b.destroy();
    return;
  }
  const bToA = await transfer(b, a, bytes);
  process.stdout.write(`b->a ${bToA}\n`);
  a.destroy();
  b.destroy();
}

main().catch((err: unknown) => {
  process.stderr.write(`lab-client: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
