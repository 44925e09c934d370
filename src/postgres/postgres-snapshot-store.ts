import { prepareSnapshot, resolveSnapshotQuery } from '../snapshots/snapshot-input.js';
import type { Snapshot, SnapshotStore } from '../snapshots/snapshot-store.js';
import { PgConnection, type PostgresConnectionOptions, type PostgresSchemaOptions } from './connection.js';
import { migrateSchema } from './migrate.js';
import { parseStoredJson, ROW_TYPES } from './rows.js';
import { quoteIdentifier } from './schema-name.js';

export type PostgresSnapshotStoreOptions = PostgresConnectionOptions & PostgresSchemaOptions;

/**
 * Snapshots in the `snapshots` table of the event store's schema, one row per (stream, version).
 * Pass the event store's pool and schema to share them: `{ pool: store.pool, schema: store.schema }`.
 */
export class PostgresSnapshotStore implements SnapshotStore {
  private readonly connection: PgConnection;
  private readonly table: string;

  constructor(options: PostgresSnapshotStoreOptions) {
    this.connection = new PgConnection(options, 'PostgreSQL snapshot store');
    this.table = `${quoteIdentifier(this.connection.schema)}.snapshots`;
  }

  get schema(): string {
    return this.connection.schema;
  }

  /** Same DDL as `PostgresEventStore.migrate()`; either one creates everything. */
  async migrate(): Promise<void> {
    await this.connection.transaction('migrate the snapshot store schema', (client) => migrateSchema(client, this.schema));
  }

  async save(snapshot: Snapshot): Promise<void> {
    this.connection.assertOpen();
    const { stateJson: state } = prepareSnapshot(snapshot);
    await this.connection.query(
      {
        text:
          `INSERT INTO ${this.table} (stream_id, version, schema_version, state, taken_at) ` +
          `VALUES ($1, $2, $3, $4::json, $5::timestamptz) ` +
          `ON CONFLICT (stream_id, version) DO UPDATE SET schema_version = EXCLUDED.schema_version, ` +
          `state = EXCLUDED.state, taken_at = EXCLUDED.taken_at`,
        values: [snapshot.streamId, snapshot.version, snapshot.schemaVersion, state, snapshot.takenAt.toISOString()],
      },
      'save a snapshot',
      true,
    );
  }

  async load(
    streamId: string,
    options: { readonly maxVersion?: number; readonly schemaVersion?: number } = {},
  ): Promise<Snapshot | undefined> {
    this.connection.assertOpen();
    const { maxVersion: max, schemaVersion } = resolveSnapshotQuery(streamId, options);
    if (max < 1) return undefined;
    const result = await this.connection.query<{
      version: number;
      schema_version: number;
      state: string;
      taken_ms: number;
    }>(
      {
        text:
          `SELECT version, schema_version, state, (extract(epoch FROM taken_at) * 1000)::float8 AS taken_ms ` +
          `FROM ${this.table} WHERE stream_id = $1 AND version <= $2 AND ($3::bigint IS NULL OR schema_version = $3) ` +
          `ORDER BY version DESC LIMIT 1`,
        values: [streamId, max, schemaVersion ?? null],
        types: ROW_TYPES,
      },
      'load a snapshot',
    );
    const row = result.rows[0];
    if (row === undefined) return undefined;
    return Object.freeze({
      streamId,
      version: row.version,
      schemaVersion: row.schema_version,
      state: parseStoredJson(row.state) as Snapshot['state'],
      takenAt: new Date(row.taken_ms),
    });
  }

  /** Ends the pool the store created from a connection string; a pool passed in stays open. */
  async close(): Promise<void> {
    await this.connection.close();
  }
}
