import { InvalidArgumentError } from '../errors.js';
import type { RecordedEvent } from '../events/types.js';
import { assertValidProjectionName } from './projection.js';

/**
 * What a runner does with a poison event — one whose handler still fails after
 * `retry.maxAttempts` attempts:
 * - `'stop'` (default): the runner stops with `ProjectionHandlerError`, its checkpoint just
 *   before the event; nothing after it is applied until the handler is fixed. With
 *   `retry.maxAttempts: Infinity` it keeps retrying instead of stopping.
 * - `'park'`: the event is recorded as a dead letter (in the read model's database, in the same
 *   transaction that moves the checkpoint past it) and the runner carries on with the next event.
 *   Parked events are listed, retried and discarded through the `DeadLetterStore`.
 */
export type PoisonEventPolicy = 'stop' | 'park';

/** A parked event: which one, why, and whether an operator asked for another attempt. */
export interface DeadLetter {
  readonly projection: string;
  /** The event's position in the log; with `projection`, the dead letter's key. */
  readonly position: number;
  readonly eventId: string;
  readonly eventType: string;
  readonly streamId: string;
  /** The event's version in its stream. */
  readonly streamVersion: number;
  /** The last failure's message. */
  readonly error: string;
  /** Attempts so far, the retries an operator asked for included. */
  readonly attempts: number;
  readonly parkedAt: Date;
  /** Set by `retry()`; the running runner re-applies the event and clears the letter (or updates it). */
  readonly retryRequested: boolean;
}

export interface DeadLetterListOptions {
  /** At most this many, oldest position first. Default 100, at most 10,000. */
  readonly limit?: number;
  /** Only letters after this position (for paging). Default 0. */
  readonly afterPosition?: number;
}

/**
 * The dead letters of the projections of one read model's database. This is the operator's API:
 * `list` and `count` show what is parked, `retry` asks the runner to apply a parked event again
 * (the runner must be running; it picks the request up within its poll interval), `discard`
 * gives up on it for good. Nothing here runs handlers, so a tool without the projection's code
 * (a CLI) can use it.
 */
export interface DeadLetterStore {
  list(projection: string, options?: DeadLetterListOptions): Promise<DeadLetter[]>;
  count(projection: string): Promise<number>;
  /** Marks a parked event for another attempt. False when there is no such letter. */
  retry(projection: string, position: number): Promise<boolean>;
  /** Removes a parked event for good: its effect on the read model will never be applied. False when absent. */
  discard(projection: string, position: number): Promise<boolean>;
}

/** The runner's side: letters marked for retry, oldest first. Every target with dead letters offers it. */
export interface DeadLetterQueue extends DeadLetterStore {
  retryRequested(projection: string, limit: number): Promise<DeadLetter[]>;
}

/** A dead-letter store that also takes a runner's writes on its own (for targets without a shared transaction). */
export interface StandaloneDeadLetterStore extends DeadLetterQueue {
  write(projection: string, write: DeadLetterWrite): void | Promise<void>;
}

/** What a runner writes with a commit (in the same transaction, where the target can). */
export type DeadLetterWrite =
  | { readonly kind: 'park'; readonly letter: DeadLetter }
  | { readonly kind: 'resolve'; readonly position: number }
  | { readonly kind: 'retry-failed'; readonly position: number; readonly error: string }
  /** A rebuild replays every event, parked ones included: their letters go with the old read model. */
  | { readonly kind: 'clear' };

export function resolvePoisonEventPolicy(value: PoisonEventPolicy | undefined): PoisonEventPolicy {
  const policy = value ?? 'stop';
  if (policy !== 'stop' && policy !== 'park') {
    throw new InvalidArgumentError(`poisonEvents must be 'stop' or 'park', got ${String(value)}.`);
  }
  return policy;
}

export function resolveListOptions(projection: string, options: DeadLetterListOptions | undefined): { limit: number; after: number } {
  assertValidProjectionName(projection);
  const limit = options?.limit ?? 100;
  const after = options?.afterPosition ?? 0;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 10_000) {
    throw new InvalidArgumentError(`limit must be an integer from 1 to 10,000, got ${String(limit)}.`);
  }
  if (!Number.isSafeInteger(after) || after < 0) {
    throw new InvalidArgumentError(`afterPosition must be an integer >= 0, got ${String(after)}.`);
  }
  return { limit, after };
}

export function assertValidPosition(position: unknown): asserts position is number {
  if (typeof position !== 'number' || !Number.isSafeInteger(position) || position < 1) {
    throw new InvalidArgumentError(`A dead letter's position must be an integer >= 1, got ${String(position)}.`);
  }
}

/** Longest error message kept with a letter. */
const MAX_ERROR_LENGTH = 2_000;

export function errorText(error: unknown): string {
  const cause = (error as { cause?: unknown } | null)?.cause;
  const text = cause instanceof Error ? cause.message : error instanceof Error ? error.message : String(error);
  return text.length > MAX_ERROR_LENGTH ? `${text.slice(0, MAX_ERROR_LENGTH - 3)}...` : text;
}

export function newDeadLetter(projection: string, event: RecordedEvent, error: unknown, attempts: number): DeadLetter {
  return Object.freeze({
    projection,
    position: event.position,
    eventId: event.eventId,
    eventType: event.type,
    streamId: event.streamId,
    streamVersion: event.version,
    error: errorText(error),
    attempts,
    parkedAt: new Date(),
    retryRequested: false,
  });
}

/**
 * A dead letter as the SQL adapters store it (one table layout in both). The drivers differ only
 * in how a time and a flag come back: PostgreSQL gives a Date and a boolean, SQLite epoch
 * milliseconds and 0/1.
 */
export interface DeadLetterRow {
  projection: string;
  position: number;
  event_id: string;
  event_type: string;
  stream_id: string;
  stream_version: number;
  error: string;
  attempts: number;
  parked_at: Date | number;
  retry_requested: boolean | number;
}

export function deadLetterFromRow(row: DeadLetterRow): DeadLetter {
  return Object.freeze({
    projection: row.projection,
    position: row.position,
    eventId: row.event_id,
    eventType: row.event_type,
    streamId: row.stream_id,
    streamVersion: row.stream_version,
    error: row.error,
    attempts: row.attempts,
    parkedAt: row.parked_at instanceof Date ? row.parked_at : new Date(row.parked_at),
    retryRequested: row.retry_requested === true || row.retry_requested === 1,
  });
}

/** Dead letters in memory, beside an `InMemoryReadModel`'s checkpoints. */
export class InMemoryDeadLetterStore implements StandaloneDeadLetterStore {
  private readonly letters = new Map<string, Map<number, DeadLetter>>();

  async list(projection: string, options?: DeadLetterListOptions): Promise<DeadLetter[]> {
    const { limit, after } = resolveListOptions(projection, options);
    return this.sorted(projection)
      .filter((l) => l.position > after)
      .slice(0, limit);
  }

  async count(projection: string): Promise<number> {
    assertValidProjectionName(projection);
    return this.letters.get(projection)?.size ?? 0;
  }

  async retry(projection: string, position: number): Promise<boolean> {
    assertValidProjectionName(projection);
    assertValidPosition(position);
    const letter = this.letters.get(projection)?.get(position);
    if (letter === undefined) return false;
    this.put({ ...letter, retryRequested: true });
    return true;
  }

  async discard(projection: string, position: number): Promise<boolean> {
    assertValidProjectionName(projection);
    assertValidPosition(position);
    return this.letters.get(projection)?.delete(position) ?? false;
  }

  async retryRequested(projection: string, limit: number): Promise<DeadLetter[]> {
    return this.sorted(projection)
      .filter((l) => l.retryRequested)
      .slice(0, limit);
  }

  /** Applies a runner's write; synchronous, so it commits with the in-memory checkpoint. */
  write(projection: string, write: DeadLetterWrite): void {
    const existing = this.letters.get(projection);
    switch (write.kind) {
      case 'park':
        this.put(write.letter);
        return;
      case 'resolve':
        existing?.delete(write.position);
        return;
      case 'retry-failed': {
        const letter = existing?.get(write.position);
        if (letter !== undefined) this.put({ ...letter, error: write.error, attempts: letter.attempts + 1, retryRequested: false });
        return;
      }
      case 'clear':
        this.letters.delete(projection);
        return;
    }
  }

  private put(letter: DeadLetter): void {
    let forProjection = this.letters.get(letter.projection);
    if (forProjection === undefined) {
      forProjection = new Map();
      this.letters.set(letter.projection, forProjection);
    }
    forProjection.set(letter.position, Object.freeze({ ...letter }));
  }

  private sorted(projection: string): DeadLetter[] {
    return [...(this.letters.get(projection)?.values() ?? [])].sort((a, b) => a.position - b.position);
  }
}
