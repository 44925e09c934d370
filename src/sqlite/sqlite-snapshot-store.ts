import type BetterSqlite3 from 'better-sqlite3';
import { StoreClosedError } from '../errors.js';
import { parseStoredJson } from '../events/validation.js';
import type { Snapshot, SnapshotStore } from '../snapshots/snapshot-store.js';
import { prepareSnapshot, resolveSnapshotQuery } from '../snapshots/snapshot-input.js';
import {
  openConnection,
  translateSqliteError,
  type SqliteConnectionOptions,
  type SqliteTuningOptions,
} from './connection.js';
import { migrateSchema, type Migration } from './schema.js';

export const SNAPSHOTS_COMPONENT = 'snapshots';

const SNAPSHOT_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'snapshots, one row per stream and version',
    up: (db) => {
      db.exec(`
        CREATE TABLE eventfold_snapshots (
          stream_id      TEXT    NOT NULL,
          version        INTEGER NOT NULL,
          schema_version INTEGER NOT NULL,
          state          TEXT    NOT NULL,
          taken_at       INTEGER NOT NULL,
          PRIMARY KEY (stream_id, version)
        ) STRICT, WITHOUT ROWID;
      `);
    },
  },
];

/** Same file as the events (pass `eventStore.database`) or a file of its own. */
export type SqliteSnapshotStoreOptions = SqliteConnectionOptions & SqliteTuningOptions;

type SnapshotRow = [version: number, schemaVersion: number, state: string, takenAt: number];

/**
 * Snapshots in SQLite (table `eventfold_snapshots`). Keeps every snapshot saved, one per stream
 * and version, so time travel can start from the newest one at or below a version.
 */
export class SqliteSnapshotStore implements SnapshotStore {
  private readonly db: BetterSqlite3.Database;
  private readonly ownsDatabase: boolean;
  private closed = false;
  private readonly upsert: BetterSqlite3.Statement<[string, number, number, string, number]>;
  private readonly newest: BetterSqlite3.Statement<[string, number], SnapshotRow>;
  private readonly newestOfSchema: BetterSqlite3.Statement<[string, number, number], SnapshotRow>;

  constructor(options: SqliteSnapshotStoreOptions) {
    const { db, owned } = openConnection(options, 'SqliteSnapshotStore');
    this.db = db;
    this.ownsDatabase = owned;
    try {
      migrateSchema(db, SNAPSHOTS_COMPONENT, SNAPSHOT_MIGRATIONS);
      this.upsert = db.prepare(
        `INSERT INTO eventfold_snapshots (stream_id, version, schema_version, state, taken_at)
         VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (stream_id, version) DO UPDATE SET
           schema_version = excluded.schema_version, state = excluded.state, taken_at = excluded.taken_at`,
      );
      const columns = 'version, schema_version, state, taken_at';
      this.newest = db
        .prepare<[string, number], SnapshotRow>(
          `SELECT ${columns} FROM eventfold_snapshots
           WHERE stream_id = ? AND version <= ? ORDER BY version DESC LIMIT 1`,
        )
        .raw();
      this.newestOfSchema = db
        .prepare<[string, number, number], SnapshotRow>(
          `SELECT ${columns} FROM eventfold_snapshots
           WHERE stream_id = ? AND version <= ? AND schema_version = ? ORDER BY version DESC LIMIT 1`,
        )
        .raw();
    } catch (error) {
      if (owned) db.close();
      throw translateSqliteError(error, 'SqliteSnapshotStore');
    }
  }

  async save(snapshot: Snapshot): Promise<void> {
    this.assertOpen();
    const { stateJson: state, takenAtMs: takenAt } = prepareSnapshot(snapshot);
    try {
      this.upsert.run(snapshot.streamId, snapshot.version, snapshot.schemaVersion, state, takenAt);
    } catch (error) {
      throw translateSqliteError(error, 'SqliteSnapshotStore');
    }
  }

  async load(
    streamId: string,
    options: { readonly maxVersion?: number; readonly schemaVersion?: number } = {},
  ): Promise<Snapshot | undefined> {
    this.assertOpen();
    const { maxVersion: bound, schemaVersion } = resolveSnapshotQuery(streamId, options);
    let row: SnapshotRow | undefined;
    try {
      row =
        schemaVersion === undefined
          ? this.newest.get(streamId, bound)
          : this.newestOfSchema.get(streamId, bound, schemaVersion);
    } catch (error) {
      throw translateSqliteError(error, 'SqliteSnapshotStore');
    }
    if (row === undefined) return undefined;
    return Object.freeze({
      streamId,
      version: row[0],
      schemaVersion: row[1],
      state: parseStoredJson(row[2]) as Snapshot['state'],
      takenAt: new Date(row[3]),
    });
  }

  /** Closes the connection if the store opened it; a `{ database }` passed in stays open. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsDatabase) this.db.close();
  }

  private assertOpen(): void {
    if (this.closed || !this.db.open) throw new StoreClosedError('SQLite snapshot store');
  }
}
