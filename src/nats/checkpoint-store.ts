import type { NatsConnection } from '@nats-io/transport-node';
import { JetStreamApiError } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { StoreClosedError } from '../errors.js';
import type { Checkpoint } from '../projections/target.js';
import type { CheckpointStore } from '../projections/checkpoint-store.js';
import { CheckpointConflictError } from '../projections/errors.js';
import { assertValidProjectionName } from '../projections/projection.js';
import { openBucket, resolveBucket, type ResolvedBucket } from './kv.js';
import type { NatsStorage } from './options.js';
import { encodeToken } from './subjects.js';

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
 * server: create-if-absent for the first checkpoint, update-at-revision after.
 */
export class NatsCheckpointStore implements CheckpointStore {
  private readonly connection: NatsConnection;
  private readonly bucketOptions: ResolvedBucket;
  private kv: KV | undefined;
  private closed = false;

  constructor(options: NatsCheckpointStoreOptions) {
    this.connection = options.connection;
    this.bucketOptions = resolveBucket({
      bucket: options.bucket ?? 'eventfold_checkpoints',
      ...(options.replicas === undefined ? {} : { replicas: options.replicas }),
      ...(options.storage === undefined ? {} : { storage: options.storage }),
    });
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
  }

  async close(): Promise<void> {
    this.closed = true;
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

function same(a: Checkpoint | undefined, b: Checkpoint | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.position === b.position && a.version === b.version;
}
