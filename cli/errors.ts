/** A mistake in what the user typed: exit status 2 and one line, no stack trace. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
