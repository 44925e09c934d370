import type { NatsConnection } from '@nats-io/transport-node';
import { JetStreamApiError } from '@nats-io/jetstream';
import type { KV, KvEntry } from '@nats-io/kv';
import { InvalidArgumentError, StoreClosedError } from '../errors.js';
import { UniqueValueTakenError } from './errors.js';
import { openBucket, resolveBucket, type ResolvedBucket } from './kv.js';
import type { NatsStorage } from './options.js';
import { encodeToken } from './subjects.js';

export interface NatsUniqueValuesOptions {
  readonly connection: NatsConnection;
  /** KV bucket name. Default `eventfold_unique`. */
  readonly bucket?: string;
  readonly replicas?: number;
  readonly storage?: NatsStorage;
  /**
   * Tells whether `owner` still holds `value` according to the event streams (for example: the
   * user exists and is still called so). Asked only about reservations older than
   * `staleAfterMs`, to reclaim those left by a process that died between reserving and writing
   * its events. Without it, reservations are never reclaimed.
   */
  readonly isHeld?: (scope: string, value: string, owner: string) => Promise<boolean>;
  /** Age after which a reservation may be checked with `isHeld` and reclaimed. Default 30,000 ms. */
  readonly staleAfterMs?: number;
}

interface Reservation {
  readonly owner: string;
  readonly at: number;
}

const WRONG_LAST_SEQUENCE = 10071;

/**
 * Unique values without a multi-stream append: a reservation is a KV key `<scope>.<value>`
 * created only if absent (the server refuses a second create), naming its owner.
 *
 * The write that the reservation guards (say, `UserRegistered`) is a separate append, so the two
 * can come apart:
 * - the append fails (conflict, bad input): call `release` — the value is free again;
 * - the process dies after `reserve` and before the append: the reservation is orphaned. A later
 *   `reserve` of that value by another owner asks `isHeld(scope, value, oldOwner)` once the
 *   reservation is older than `staleAfterMs`; when the streams say the old owner does not hold
 *   it, the reservation is taken over with a compare-and-set on its revision (two contenders
 *   cannot both win).
 * - `release` after a rename or deactivation deletes the key only if the caller still owns it.
 */
export class NatsUniqueValues {
  private readonly connection: NatsConnection;
  private readonly bucketOptions: ResolvedBucket;
  private readonly isHeld: NatsUniqueValuesOptions['isHeld'];
  private readonly staleAfterMs: number;
  private kv: KV | undefined;
  private closed = false;

  constructor(options: NatsUniqueValuesOptions) {
    this.connection = options.connection;
    this.bucketOptions = resolveBucket(options, 'eventfold_unique');
    this.isHeld = options.isHeld;
    const stale = options.staleAfterMs ?? 30_000;
    if (!Number.isSafeInteger(stale) || stale < 0) throw new InvalidArgumentError(`staleAfterMs must be an integer >= 0, got ${String(stale)}.`);
    this.staleAfterMs = stale;
  }

  async migrate(): Promise<void> {
    this.assertOpen();
    this.kv = await openBucket(this.connection, this.bucketOptions);
  }

  /**
   * Reserves `value` in `scope` for `owner`. Idempotent for the same owner; throws
   * `UniqueValueTakenError` when another owner holds it.
   */
  async reserve(scope: string, value: string, owner: string): Promise<void> {
    const kv = await this.bucket();
    const key = keyOf(scope, value);
    const record = JSON.stringify({ owner: text('owner', owner), at: Date.now() } satisfies Reservation);
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await kv.create(key, record);
        return;
      } catch (error) {
        if (!isWrongSequence(error)) throw error;
      }
      const entry = await kv.get(key);
      if (entry === null || entry.operation !== 'PUT') continue; // released meanwhile: create again
      const current = entry.json<Reservation>();
      if (current.owner === owner) return;
      if (!(await this.reclaimable(scope, value, current))) throw new UniqueValueTakenError(scope, value, current.owner);
      try {
        await kv.update(key, record, entry.revision);
        return;
      } catch (error) {
        if (!isWrongSequence(error)) throw error;
        // Someone else changed it first: look again.
      }
    }
    throw new UniqueValueTakenError(scope, value, (await this.ownerOf(scope, value)) ?? 'unknown');
  }

  /** Frees `value` if `owner` holds it (a compare-and-set: never frees another owner's reservation). */
  async release(scope: string, value: string, owner: string): Promise<boolean> {
    const kv = await this.bucket();
    const key = keyOf(scope, value);
    const entry = await kv.get(key);
    if (!isHeldBy(entry, owner)) return false;
    try {
      await kv.delete(key, { previousSeq: entry!.revision });
      return true;
    } catch (error) {
      if (isWrongSequence(error)) return false;
      throw error;
    }
  }

  /** The owner holding `value`, if any. */
  async ownerOf(scope: string, value: string): Promise<string | undefined> {
    const kv = await this.bucket();
    const entry = await kv.get(keyOf(scope, value));
    return entry === null || entry.operation !== 'PUT' ? undefined : entry.json<Reservation>().owner;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private async reclaimable(scope: string, value: string, current: Reservation): Promise<boolean> {
    if (this.isHeld === undefined) return false;
    if (Date.now() - current.at < this.staleAfterMs) return false;
    return !(await this.isHeld(scope, value, current.owner));
  }

  private async bucket(): Promise<KV> {
    if (this.closed) throw new StoreClosedError('NATS unique values');
    if (this.kv === undefined) await this.migrate();
    return this.kv!;
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreClosedError('NATS unique values');
  }
}

function isHeldBy(entry: KvEntry | null, owner: string): boolean {
  return entry !== null && entry.operation === 'PUT' && entry.json<Reservation>().owner === owner;
}

function isWrongSequence(error: unknown): boolean {
  return error instanceof JetStreamApiError && (error.code === WRONG_LAST_SEQUENCE || error.code === 10164);
}

function text(name: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 512) {
    throw new InvalidArgumentError(`${name} must be a non-empty string of at most 512 characters.`);
  }
  return value;
}

function keyOf(scope: string, value: string): string {
  return `${encodeToken(text('scope', scope))}.${encodeToken(text('value', value))}`;
}
