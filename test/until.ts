/**
 * The one way a test waits: for the state that proves what it waits for.
 *
 *   await until(() => fe.text() === 'abc', 'the frontend got abc');
 *   const line = await until(() => lines.find((l) => l.startsWith('ok')), 'an ok line');
 *
 * `predicate` is probed (sync or async) until it returns a value other than
 * false, null or undefined, which `until` returns. Between probes it yields
 * to the event loop (sockets, timers and the engine's scheduler run), so it
 * ends as soon as the state holds: it is not a sleep. After `timeoutMs` it
 * fails naming what it waited for and the last value it saw.
 */
export async function until<T>(
  predicate: () => T | Promise<T>,
  what: string,
  timeoutMs = 5000,
): Promise<Exclude<T, false | null | undefined>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value !== false && value !== null && value !== undefined) {
      return value as Exclude<T, false | null | undefined>;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what} (last: ${String(value)})`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
