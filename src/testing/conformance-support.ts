import type {
  BatchTooLargeError,
  CapabilityNotSupportedError,
  ConcurrencyError,
  InvalidArgumentError,
  InvalidEventError,
  InvalidStreamIdError,
  StoreClosedError,
  StreamAlreadyExistsError,
  StreamNotFoundError,
} from '../errors.js';
import type { AnyEvent, RecordedEvent } from '../events/types.js';
import type { EventStore } from '../store/event-store.js';
import type { EventStoreSuite } from './conformance-context.js';
import { expect } from './expect.js';

/**
 * Helpers shared by the conformance suite. Errors are recognised by `name` and `code`, not
 * `instanceof`, so an adapter built against another copy of eventfold still passes.
 */

interface ErrorKinds {
  ConcurrencyError: ConcurrencyError;
  StreamAlreadyExistsError: StreamAlreadyExistsError;
  StreamNotFoundError: StreamNotFoundError;
  InvalidEventError: InvalidEventError;
  BatchTooLargeError: BatchTooLargeError;
  InvalidStreamIdError: InvalidStreamIdError;
  InvalidArgumentError: InvalidArgumentError;
  StoreClosedError: StoreClosedError;
  CapabilityNotSupportedError: CapabilityNotSupportedError;
}

export type ErrorKind = keyof ErrorKinds;

export const ERROR_CODES: { readonly [K in ErrorKind]: string } = {
  ConcurrencyError: 'CONCURRENCY_CONFLICT',
  StreamAlreadyExistsError: 'STREAM_ALREADY_EXISTS',
  StreamNotFoundError: 'STREAM_NOT_FOUND',
  InvalidEventError: 'INVALID_EVENT',
  BatchTooLargeError: 'BATCH_TOO_LARGE',
  InvalidStreamIdError: 'INVALID_STREAM_ID',
  InvalidArgumentError: 'INVALID_ARGUMENT',
  StoreClosedError: 'STORE_CLOSED',
  CapabilityNotSupportedError: 'CAPABILITY_NOT_SUPPORTED',
};

/** Runs `action` (sync throw or async rejection both count) and returns the error it failed with. */
export async function failureOf(action: () => unknown): Promise<unknown> {
  try {
    await action();
  } catch (error) {
    return error;
  }
  return undefined;
}

/** Asserts that `action` fails with the given eventfold error kind and returns the error. */
export async function expectFailure<K extends ErrorKind>(action: () => unknown, kind: K): Promise<ErrorKinds[K]> {
  return expectFailureOf(action, [kind]);
}

/**
 * Asserts that `action` fails with one of the given kinds. Used where the port leaves the order of
 * two refusals open (bad input and a missing capability in the same call).
 */
export async function expectFailureOf<K extends ErrorKind>(action: () => unknown, kinds: readonly K[]): Promise<ErrorKinds[K]> {
  const wanted = kinds.map((kind) => `${kind} (code ${ERROR_CODES[kind]})`).join(' or ');
  const error = await failureOf(action);
  if (error === undefined) {
    expect.fail(`expected ${wanted} but the call succeeded`);
  }
  if (!(error instanceof Error)) {
    expect.fail(`expected ${wanted} but got a non-Error value: ${String(error)}`);
  }
  const code = (error as { code?: unknown }).code;
  if (!kinds.some((kind) => error.name === kind && code === ERROR_CODES[kind])) {
    expect.fail(`expected ${wanted} but got ${error.name} (code ${String(code)}): ${error.message}`);
  }
  expect(error.message.length).toBeGreaterThan(0);
  return error as ErrorKinds[K];
}

/**
 * The error kinds a call over two or more streams may fail with when it is also bad input: on a
 * store without atomic multi-stream appends, refusing it as unsupported is as right as rejecting
 * the input (either way nothing is written; the suite checks the input error on one stream too).
 */
export function orRefused<K extends ErrorKind>(
  suite: Pick<EventStoreSuite, 'capabilities'>,
  kind: K,
): (K | 'CapabilityNotSupportedError')[] {
  return suite.capabilities.atomicMultiStreamAppend ? [kind] : [kind, 'CapabilityNotSupportedError'];
}

/**
 * Asserts that `action` fails an expected-version check and returns the error: a
 * `StreamAlreadyExistsError` when the failed check meant to create the stream (`'no-stream'` or
 * `0`) and found it existing, else a plain `ConcurrencyError`.
 */
export async function expectConflict(action: () => unknown): Promise<ConcurrencyError> {
  const error = (await failureOf(action)) as Partial<ConcurrencyError> | undefined;
  const { expectedVersion: expected, actualVersion: actual } = error ?? {};
  const kind: ErrorKind =
    (expected === 'no-stream' || expected === 0) && typeof actual === 'number' && actual > 0
      ? 'StreamAlreadyExistsError'
      : 'ConcurrencyError';
  const checked = await expectFailure(() => {
    throw error ?? new Error('the call succeeded');
  }, kind);
  if (kind === 'StreamAlreadyExistsError') expect(checked.message).toContain('already exists');
  return checked;
}

/** What a reader can observe of a store: used to prove that a failed call wrote nothing. */
export interface ObservedState {
  readonly head: number;
  readonly log: readonly RecordedEvent[];
  readonly streams: Readonly<Record<string, { version: number; events: readonly RecordedEvent[] | 'missing' }>>;
}

export async function observe(store: EventStore, streamIds: readonly string[]): Promise<ObservedState> {
  const streams: Record<string, { version: number; events: readonly RecordedEvent[] | 'missing' }> = {};
  for (const streamId of streamIds) {
    const version = await store.streamVersion(streamId);
    let events: readonly RecordedEvent[] | 'missing';
    try {
      events = await store.readStream(streamId).toArray();
    } catch (error) {
      if ((error as { code?: unknown }).code !== ERROR_CODES.StreamNotFoundError) throw error;
      events = 'missing';
    }
    streams[streamId] = { version, events };
  }
  return { head: await store.headPosition(), log: await store.readAll().toArray(), streams };
}

/** Asserts the store looks exactly as it did in `before` (same head, log and streams). */
export async function expectUnchanged(store: EventStore, before: ObservedState): Promise<void> {
  const after = await observe(store, Object.keys(before.streams));
  expect(after.head).toBe(before.head);
  expect(after.log.map(summary)).toEqual(before.log.map(summary));
  expect(after.streams).toEqual(before.streams);
}

/** The stored identity of an event, enough to compare reads without object identity. */
export function summary(event: RecordedEvent): {
  streamId: string;
  version: number;
  position: number;
  eventId: string;
  type: string;
} {
  return {
    streamId: event.streamId,
    version: event.version,
    position: event.position,
    eventId: event.eventId,
    type: event.type,
  };
}

/** `count` simple events whose data says which writer and which index produced them. */
export function numbered(count: number, tag = 'e', type = 'Numbered'): AnyEvent[] {
  return Array.from({ length: count }, (_, i) => ({ type, data: { tag, n: i + 1 } }));
}

/** Type + data (+ metadata) of recorded events, to compare with what was appended. */
export function contentOf(events: readonly RecordedEvent[]): { type: string; data: unknown }[] {
  return events.map((e) => ({ type: e.type, data: e.data }));
}

export function versionsOf(events: readonly RecordedEvent[]): number[] {
  return events.map((e) => e.version);
}

/** from, from+1, …, to (empty when from > to). */
export function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let v = from; v <= to; v++) out.push(v);
  return out;
}

/** from, from-1, …, to (empty when from < to). */
export function countdown(from: number, to: number): number[] {
  return range(to, from).reverse();
}

export function expectStrictlyIncreasing(values: readonly number[]): void {
  for (let i = 1; i < values.length; i++) {
    if (!(values[i]! > values[i - 1]!)) {
      expect.fail(`positions must be strictly increasing, but #${i - 1} is ${values[i - 1]} and #${i} is ${values[i]}`);
    }
  }
}

export function isDeeplyFrozen(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return true;
  if (value instanceof Date) return true;
  if (!Object.isFrozen(value)) return false;
  return Object.values(value).every(isDeeplyFrozen);
}

export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;
