import type { NatsConnection } from '@nats-io/transport-node';
import type { KV } from '@nats-io/kv';
import { StoreClosedError } from '../errors.js';
import { frozenDate } from '../events/frozen-date.js';
import { deepFreezeJson } from '../events/validation.js';
import { prepareSnapshot, resolveSnapshotQuery } from '../snapshots/snapshot-input.js';
import type { Snapshot, SnapshotStore } from '../snapshots/snapshot-store.js';
import { openBucket, resolveBucket, type ResolvedBucket } from './kv.js';
import type { NatsStorage } from './options.js';
import { encodeStreamToken } from './subjects.js';

export interface NatsSnapshotStoreOptions {
  /** An open connection (for example `eventStore.connection`); the snapshot store never closes it. */
  readonly connection: NatsConnection;
  /** KV bucket name. Default `eventfold_snapshots`. */
  readonly bucket?: string;
  readonly replicas?: number;
  readonly storage?: NatsStorage;
}

/**
 * Snapshots in a JetStream KV bucket, one key per stream and version: `<stream token>.<version>`
 * (the token is the stream id encoded as for subjects). A load lists the stream's keys (one
 * subject-filtered read of key names) and fetches the newest one at or below `maxVersion` whose
 * schema version fits. Call `migrate()` once (idempotent) or use `NatsSnapshotStore.create`.
 */
export class NatsSnapshotStore implements SnapshotStore {
  private readonly connection: NatsConnection;
  private readonly bucketOptions: ResolvedBucket;
  private kv: KV | undefined;
  private closed = false;

  constructor(options: NatsSnapshotStoreOptions) {
    this.connection = options.connection;
    this.bucketOptions = resolveBucket(options, 'eventfold_snapshots');
  }

  static async create(options: NatsSnapshotStoreOptions): Promise<NatsSnapshotStore> {
    const store = new NatsSnapshotStore(options);
    await store.migrate();
    return store;
  }

  /** Creates the bucket, or checks an existing one. */
  async migrate(): Promise<void> {
    this.assertOpen();
    this.kv = await openBucket(this.connection, this.bucketOptions);
  }

  async save(snapshot: Snapshot): Promise<void> {
    this.assertOpen();
    const { stateJson, takenAtMs } = prepareSnapshot(snapshot);
    const key = `${encodeStreamToken(snapshot.streamId)}.${snapshot.version}`;
    const value = `{"schemaVersion":${snapshot.schemaVersion},"takenAt":${takenAtMs},"state":${stateJson}}`;
    await (await this.bucket()).put(key, value);
  }

  async load(
    streamId: string,
    options: { readonly maxVersion?: number; readonly schemaVersion?: number } = {},
  ): Promise<Snapshot | undefined> {
    this.assertOpen();
    const { maxVersion, schemaVersion } = resolveSnapshotQuery(streamId, options);
    if (maxVersion < 1) return undefined;
    const kv = await this.bucket();
    const token = encodeStreamToken(streamId);
    const versions: number[] = [];
    for await (const key of await kv.keys(`${token}.*`)) {
      const version = Number(key.slice(token.length + 1));
      if (Number.isSafeInteger(version) && version <= maxVersion) versions.push(version);
    }
    versions.sort((a, b) => b - a);
    for (const version of versions) {
      this.assertOpen();
      const entry = await kv.get(`${token}.${version}`);
      if (entry === null || entry.operation !== 'PUT') continue;
      const stored = entry.json<{ schemaVersion: number; takenAt: number; state: Snapshot['state'] }>();
      if (schemaVersion !== undefined && stored.schemaVersion !== schemaVersion) continue;
      return Object.freeze({
        streamId,
        version,
        schemaVersion: stored.schemaVersion,
        state: deepFreezeJson(stored.state),
        takenAt: frozenDate(stored.takenAt),
      });
    }
    return undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private async bucket(): Promise<KV> {
    if (this.kv === undefined) await this.migrate();
    return this.kv!;
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreClosedError('NATS snapshot store');
  }
}
