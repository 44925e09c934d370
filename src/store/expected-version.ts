import { expectedVersionConflict, InvalidArgumentError, type ExpectedVersion } from '../errors.js';

export type { ExpectedVersion };

export function assertValidExpectedVersion(expected: unknown, streamId: string): asserts expected is ExpectedVersion {
  if (expected === 'no-stream' || expected === 'stream-exists' || expected === 'any') return;
  if (typeof expected === 'number' && Number.isSafeInteger(expected) && expected >= 0) return;
  throw new InvalidArgumentError(
    `Invalid expectedVersion ${JSON.stringify(expected) ?? String(expected)} for stream '${streamId}': ` +
      `use a version number >= 0, 'no-stream', 'stream-exists' or 'any'.`,
  );
}

/** True when a stream at `actual` satisfies `expected`. */
export function versionMatches(expected: ExpectedVersion, actual: number): boolean {
  switch (expected) {
    case 'any':
      return true;
    case 'no-stream':
      return actual === 0;
    case 'stream-exists':
      return actual > 0;
    default:
      return actual === expected;
  }
}

/**
 * Throws `ConcurrencyError` (with the real version) when the check fails; its subclass
 * `StreamAlreadyExistsError` when the writer meant to create the stream and it exists.
 */
export function checkExpectedVersion(streamId: string, expected: ExpectedVersion, actual: number): void {
  if (!versionMatches(expected, actual)) throw expectedVersionConflict(streamId, expected, actual);
}
