import type { NatsConnection } from '@nats-io/transport-node';
import { JetStreamApiError } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { StoreClosedError } from '../errors.js';
import type { Checkpoint } from '../projections/target.js';
import type { CheckpointStore, StoredCheckpoint } from '../projections/checkpoint-store.js';
import { parseStoredRunnerError, type StoredRunnerError } from '../projections/runner-error.js';
import { CheckpointConflictError } from '../projections/errors.js';
import { assertValidProjectionName } from '../projections/projection.js';
import { openBucket, resolveBucket, type ResolvedBucket } from './kv.js';
import type { NatsStorage } from './options.js';
import { decodeStreamToken, encodeToken } from './subjects.js';

/** Keys of runner errors: tokens never hold `.`, so `error.<token>` cannot be a checkpoint key. */
const ERROR_KEY_PREFIX = 'error.';

/** A stored checkpoint with the time of its last write (the KV entry's). */
export interface NatsStoredCheckpoint extends StoredCheckpoint {
  readonly updatedAt: Date;
}

export interface NatsCheckpointStoreOptions {
  readonly connection: NatsConnection;
  /** KV bucket name. Default `eventfold_checkpoints`. */
  readonly bucket?: string;
  readonly replicas?: number;
  readonly storage?: NatsStorage;
}

const WRONG_LAST_SEQUENCE = 10071;

/**
 * Projection checkpoints in a JetStream KV bucket, for read models that do not live in a database
 * of their own (pair it with `AtLeastOnceTarget`). `save` is a compare-and-set enforced by the
 * server: create-if-absent for the first checkpoint, update-at-revision after. A runner's last
 * fault is kept in the same bucket under `error.<projection>` (its own key, so it never moves
 * the checkpoint's revision).
 */
export class NatsCheckpointStore implements CheckpointStore {
  private readonly connection: NatsConnection;
  private readonly bucketOptions: ResolvedBucket;
  private kv: KV | undefined;
  private closed = false;

  constructor(options: NatsCheckpointStoreOptions) {
    this.connection = options.connection;
    this.bucketOptions = resolveBucket(options, 'eventfold_checkpoints');
  }

  async migrate(): Promise<void> {
    this.assertOpen();
    this.kv = await openBucket(this.connection, this.bucketOptions);
  }

  async load(projection: string): Promise<Checkpoint | undefined> {
    return (await this.entry(projection)).checkpoint;
  }

  async save(projection: string, expected: Checkpoint | undefined, next: Checkpoint): Promise<void> {
    const kv = await this.bucket();
    const { checkpoint, revision } = await this.entry(projection);
    if (!same(checkpoint, expected)) throw new CheckpointConflictError(projection, expected, checkpoint);
    const value = JSON.stringify({ position: next.position, version: next.version });
    const key = encodeToken(projection);
    try {
      if (revision === 0) await kv.create(key, value);
      else await kv.update(key, value, revision);
    } catch (error) {
      if (error instanceof JetStreamApiError && error.code === WRONG_LAST_SEQUENCE) {
        throw new CheckpointConflictError(projection, expected, (await this.entry(projection)).checkpoint);
      }
      throw error;
    }
  }

  async delete(projection: string): Promise<void> {
    const kv = await this.bucket();
    assertValidProjectionName(projection);
    await kv.delete(encodeToken(projection));
    await kv.delete(ERROR_KEY_PREFIX + encodeToken(projection));
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  async saveError(projection: string, error: StoredRunnerError | undefined): Promise<void> {
    assertValidProjectionName(projection);
    const kv = await this.bucket();
    const key = ERROR_KEY_PREFIX + encodeToken(projection);
    if (error === undefined) {
      await kv.delete(key);
      return;
    }
    await kv.put(key, JSON.stringify({ ...error, at: error.at.getTime() }));
  }

  async loadError(projection: string): Promise<StoredRunnerError | undefined> {
    assertValidProjectionName(projection);
    const kv = await this.bucket();
    return readError(await kv.get(ERROR_KEY_PREFIX + encodeToken(projection)));
  }

  /** Every checkpoint in the bucket, by projection name (code point order). */
  async list(): Promise<NatsStoredCheckpoint[]> {
    const kv = await this.bucket();
    const found: NatsStoredCheckpoint[] = [];
    for (const key of await keysOf(kv)) {
      // Runner errors, leases (`lock.`) and dead letters (`dead.`) share the bucket: all hold a dot.
      if (key.includes('.')) continue;
      const entry = await kv.get(key);
      if (entry === null || entry.operation !== 'PUT') continue;
      const stored = parseJson(entry.string()) as { position?: unknown; version?: unknown } | undefined;
      if (typeof stored?.position !== 'number' || typeof stored.version !== 'number') continue;
      found.push(Object.freeze({ projection: decodeStreamToken(key), position: stored.position, version: stored.version, updatedAt: entry.created }));
    }
    return found.sort((a, b) => Buffer.compare(Buffer.from(a.projection), Buffer.from(b.projection)));
  }

  /** Every stored runner fault, by projection name. */
  async listErrors(): Promise<Map<string, StoredRunnerError>> {
    const kv = await this.bucket();
    const errors = new Map<string, StoredRunnerError>();
    for (const key of await keysOf(kv)) {
      if (!key.startsWith(ERROR_KEY_PREFIX)) continue;
      const error = readError(await kv.get(key));
      if (error !== undefined) errors.set(decodeStreamToken(key.slice(ERROR_KEY_PREFIX.length)), error);
    }
    return errors;
  }

  /** The checkpoint and the KV revision to update it at (0: none stored, or deleted). */
  private async entry(projection: string): Promise<{ checkpoint: Checkpoint | undefined; revision: number }> {
    assertValidProjectionName(projection);
    const kv = await this.bucket();
    const entry = await kv.get(encodeToken(projection));
    if (entry === null) return { checkpoint: undefined, revision: 0 };
    if (entry.operation !== 'PUT') return { checkpoint: undefined, revision: entry.revision };
    const stored = entry.json<{ position: number; version: number }>();
    return { checkpoint: Object.freeze({ position: stored.position, version: stored.version }), revision: entry.revision };
  }

  private async bucket(): Promise<KV> {
    this.assertOpen();
    if (this.kv === undefined) await this.migrate();
    return this.kv!;
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreClosedError('NATS checkpoint store');
  }
}

async function keysOf(kv: KV): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of await kv.keys()) keys.push(key);
  return keys;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function readError(entry: { operation: string; string(): string } | null): StoredRunnerError | undefined {
  if (entry === null || entry.operation !== 'PUT') return undefined;
  const raw = parseJson(entry.string()) as Record<string, unknown> | undefined;
  if (typeof raw !== 'object' || raw === null) return undefined;
  return parseStoredRunnerError({ message: raw['message'], code: raw['code'], at: raw['at'], attempts: raw['attempts'], state: raw['state'] });
}

function same(a: Checkpoint | undefined, b: Checkpoint | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.position === b.position && a.version === b.version;
}
