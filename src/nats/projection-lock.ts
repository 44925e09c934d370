import { randomUUID } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { errors as natsErrors } from '@nats-io/transport-node';
import { JetStreamApiError } from '@nats-io/jetstream';
import type { KV, KvEntry } from '@nats-io/kv';
import { InvalidArgumentError, StoreClosedError } from '../errors.js';
import { silentLogger, type Logger } from '../logging.js';
import type { ConsumerLease, ConsumerLock } from '../consumers/lock.js';
import { assertValidProjectionName } from '../projections/projection.js';
import { openBucket, resolveBucket, type ResolvedBucket } from './kv.js';
import type { NatsStorage } from './options.js';
import { encodeToken } from './subjects.js';
import { describe, isTransient, retryTransient } from './transient.js';

const WRONG_LAST_SEQUENCE = 10071;

/** Lease keys: tokens never hold `.`, so `lock.<token>` is neither a checkpoint nor an error key. */
export const LOCK_KEY_PREFIX = 'lock.';

export interface NatsProjectionLockOptions {
  readonly connection: NatsConnection;
  /**
   * KV bucket name. Default `eventfold_checkpoints`: give it the bucket of the runners'
   * `NatsCheckpointStore`, where the CLI looks for the lease (under `lock.<projection>`).
   */
  readonly bucket?: string;
  readonly replicas?: number;
  readonly storage?: NatsStorage;
  /** How long a lease lasts without a renewal (the takeover delay after a crash). Default 30,000 ms. */
  readonly ttlMs?: number;
  /**
   * The most the wall clocks of two processes sharing the bucket may differ. A lease is taken over
   * only `maxClockSkewMs` after the expiry its holder wrote. Default 1,000 ms; below `ttlMs / 2`.
   */
  readonly maxClockSkewMs?: number;
  /** Where renewal retries and lost leases are reported. Default silent. */
  readonly logger?: Logger;
}

/** What a lease entry holds. `expiresAt` is the holder's wall clock; `lease` tells two leases of one owner apart. */
interface LeaseValue {
  readonly owner: string;
  readonly lease: string;
  readonly expiresAt: number;
}

/** A lease as stored: its holder, its expiry (holder's clock) and the KV revision it sits at. */
export interface NatsLeaseInfo {
  readonly owner: string;
  readonly expiresAt: Date;
  readonly revision: number;
}

/**
 * One runner per projection across processes: a lease in a JetStream KV bucket (by default the
 * checkpoints' own), key `lock.<projection>`. Taking it is a create-if-absent (or an update at the revision of a deleted or
 * expired entry); a heartbeat renews it every third of `ttlMs` with an update at the revision it
 * last wrote, so the server refuses every write of a runner that lost it (nats-server 2.9 has no
 * per-key TTL, hence the expiry in the value).
 *
 * Clocks: the holder writes `expiresAt = its wall clock + ttlMs` and, independently of its wall
 * clock, counts its lease as valid for `ttlMs` of monotonic time from the moment it *sent* its
 * last successful renewal. A contender takes over only once its wall clock is past `expiresAt +
 * maxClockSkewMs`. So the holder gives up (`onLost`) before anyone can take over as long as the
 * wall clocks differ by less than `maxClockSkewMs` and no clock runs markedly fast or slow over a
 * `ttlMs`. A holder whose renewal fails its compare-and-set, or cannot be made (NATS faults are
 * retried with backoff) before the lease runs out, reports the lease lost at once. A process
 * paused past its expiry (GC, SIGSTOP, a VM migration) finds the lease lost as soon as it runs
 * again; the checkpoint's compare-and-set still rejects a batch it had in flight.
 */
export class NatsProjectionLock implements ConsumerLock {
  private readonly connection: NatsConnection;
  private readonly bucketOptions: ResolvedBucket;
  readonly ttlMs: number;
  readonly maxClockSkewMs: number;
  private readonly logger: Logger;
  private kv: KV | undefined;

  constructor(options: NatsProjectionLockOptions) {
    this.connection = options.connection;
    this.bucketOptions = resolveBucket(options, 'eventfold_checkpoints');
    const ttlMs = options.ttlMs ?? 30_000;
    if (!Number.isSafeInteger(ttlMs) || ttlMs < 100) throw new InvalidArgumentError(`ttlMs must be an integer >= 100, got ${String(ttlMs)}.`);
    const skew = options.maxClockSkewMs ?? Math.min(1_000, Math.floor(ttlMs / 4));
    if (!Number.isSafeInteger(skew) || skew < 0 || skew >= ttlMs / 2) {
      throw new InvalidArgumentError(`maxClockSkewMs must be an integer from 0 to below ttlMs / 2, got ${String(skew)}.`);
    }
    this.ttlMs = ttlMs;
    this.maxClockSkewMs = skew;
    this.logger = options.logger ?? silentLogger;
  }

  /** The lease stored for `projection`, if any (expired or not). */
  async inspect(projection: string): Promise<NatsLeaseInfo | undefined> {
    assertValidProjectionName(projection);
    const entry = await this.retry('read a projection lease', async () => (await this.bucket()).get(LOCK_KEY_PREFIX + encodeToken(projection)));
    const value = leaseOf(entry);
    if (entry === null || value === undefined) return undefined;
    return Object.freeze({ owner: value.owner, expiresAt: new Date(value.expiresAt), revision: entry.revision });
  }

  async tryAcquire(projection: string, owner: string): Promise<ConsumerLease | undefined> {
    assertValidProjectionName(projection);
    if (typeof owner !== 'string' || owner.length === 0) throw new InvalidArgumentError('owner must be a non-empty string.');
    const key = LOCK_KEY_PREFIX + encodeToken(projection);
    const lease = randomUUID();
    let firstSentAt: number | undefined;
    const taken = await this.retry('take a projection lease', async () => {
      const kv = await this.bucket();
      const entry = await kv.get(key);
      const current = leaseOf(entry);
      // An earlier attempt whose answer was lost (a timeout) landed after all: the lease is ours,
      // counted from that first attempt's send.
      if (entry !== null && current?.lease === lease && firstSentAt !== undefined) return { revision: entry.revision, sentAt: firstSentAt };
      // A lease counts until its expiry plus the allowed clock skew, whoever's it is: owner names
      // may repeat across machines (a pid), so a name proves nothing.
      if (current !== undefined && Date.now() <= current.expiresAt + this.maxClockSkewMs) return undefined;
      const sentAt = performance.now();
      firstSentAt ??= sentAt;
      const value = encode({ owner, lease, expiresAt: Date.now() + this.ttlMs });
      try {
        const revision = entry === null ? await kv.create(key, value) : await kv.update(key, value, entry.revision);
        return { revision, sentAt };
      } catch (error) {
        // Someone else wrote first: they hold it (or will, until they expire).
        if (isWrongRevision(error)) return undefined;
        throw error;
      }
    });
    if (taken === undefined) return undefined;
    return new NatsLease(this, key, projection, owner, lease, taken.revision, taken.sentAt);
  }

  /** @internal */
  async bucket(): Promise<KV> {
    this.kv ??= await openBucket(this.connection, this.bucketOptions);
    return this.kv;
  }

  /** @internal */
  retry<T>(what: string, attempt: () => Promise<T>): Promise<T> {
    return retryTransient(what, this.ttlMs, this.logger, attempt, () => this.connection.isClosed(), () => new StoreClosedError('NATS connection'));
  }

  /** @internal */
  get log(): Logger {
    return this.logger;
  }
}

class NatsLease implements ConsumerLease {
  private listener: ((reason: string, cause?: unknown) => void) | undefined;
  private lost: { reason: string; cause?: unknown } | undefined;
  private released = false;
  private deadline: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private renewing: Promise<void> | undefined;

  constructor(
    private readonly lock: NatsProjectionLock,
    private readonly key: string,
    private readonly projection: string,
    private readonly owner: string,
    private readonly lease: string,
    private revision: number,
    sentAt: number,
  ) {
    this.armDeadline(sentAt);
    this.heartbeat = setInterval(() => {
      this.renewing ??= this.renew().finally(() => {
        this.renewing = undefined;
      });
    }, Math.max(10, Math.floor(lock.ttlMs / 3)));
    this.heartbeat.unref?.();
  }

  onLost(listener: (reason: string, cause?: unknown) => void): void {
    this.listener = listener;
    if (this.lost !== undefined) listener(this.lost.reason, this.lost.cause);
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.stopTimers();
    await this.renewing?.catch(() => undefined);
    if (this.lost !== undefined) return;
    try {
      const kv = await this.lock.bucket();
      // Only at the revision this lease wrote: a lease taken over meanwhile is left alone.
      await kv.delete(this.key, { previousSeq: this.revision });
    } catch (error) {
      // The entry expires by itself; a standby takes it over then.
      this.lock.log.warn('NATS: could not release a projection lease; it expires by itself', { projection: this.projection, error: describe(error) });
    }
  }

  /** The lease holds for `ttlMs` of monotonic time from the send of the last renewal that landed. */
  private armDeadline(sentAt: number): void {
    if (this.deadline !== undefined) clearTimeout(this.deadline);
    const left = Math.max(0, sentAt + this.lock.ttlMs - performance.now());
    this.deadline = setTimeout(() => this.lose('the lease could not be renewed before it expired'), left);
    this.deadline.unref?.();
  }

  private async renew(): Promise<void> {
    const kv = await this.lock.bucket().catch(() => undefined);
    for (let attempt = 0; this.lost === undefined && !this.released; attempt++) {
      const sentAt = performance.now();
      const value = encode({ owner: this.owner, lease: this.lease, expiresAt: Date.now() + this.lock.ttlMs });
      try {
        if (kv === undefined) throw new natsErrors.TimeoutError();
        const revision = await kv.update(this.key, value, this.revision);
        if (this.lost !== undefined) return;
        this.revision = revision;
        this.armDeadline(sentAt);
        return;
      } catch (error) {
        if (this.released) return;
        if (isWrongRevision(error)) {
          // A renewal whose answer was lost may have landed: still ours (same lease id), go on from there.
          const entry = kv === undefined ? null : await kv.get(this.key).catch(() => null);
          if (entry !== null && leaseOf(entry)?.lease === this.lease && entry.revision !== this.revision) {
            this.revision = entry.revision;
            continue;
          }
          this.lose('another runner took the lease over, or it was deleted', error);
          return;
        }
        if (error instanceof natsErrors.ClosedConnectionError) {
          this.lose('its NATS connection is closed', error);
          return;
        }
        const delay = Math.min(this.lock.ttlMs / 6, 25 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random() / 2);
        this.lock.log.warn('NATS: retrying to renew a projection lease', {
          projection: this.projection,
          attempt: attempt + 1,
          transient: isTransient(error),
          error: describe(error),
        });
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  private lose(reason: string, cause?: unknown): void {
    if (this.lost !== undefined || this.released) return;
    this.lost = { reason, cause };
    this.stopTimers();
    this.lock.log.warn('NATS: projection lease lost', { projection: this.projection, reason });
    this.listener?.(reason, cause);
  }

  private stopTimers(): void {
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    if (this.deadline !== undefined) clearTimeout(this.deadline);
    this.heartbeat = undefined;
    this.deadline = undefined;
  }
}

function encode(value: LeaseValue): string {
  return JSON.stringify(value);
}

function leaseOf(entry: KvEntry | null): LeaseValue | undefined {
  if (entry === null || entry.operation !== 'PUT') return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(entry.string());
  } catch {
    raw = undefined;
  }
  const value = raw as Partial<LeaseValue> | undefined;
  // Unreadable content is treated as a lease that never expires: take it only after deleting it by hand.
  if (typeof value !== 'object' || value === null || typeof value.owner !== 'string' || typeof value.expiresAt !== 'number') {
    return { owner: '', lease: '', expiresAt: Number.POSITIVE_INFINITY };
  }
  return { owner: value.owner, lease: typeof value.lease === 'string' ? value.lease : '', expiresAt: value.expiresAt };
}

function isWrongRevision(error: unknown): boolean {
  return error instanceof JetStreamApiError && error.code === WRONG_LAST_SEQUENCE;
}
