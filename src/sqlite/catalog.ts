import type BetterSqlite3 from 'better-sqlite3';
import {
  checkpointSummaryFromRow,
  resolveListStreamsOptions,
  streamSummaryFromRow,
  type CheckpointSummary,
  type CheckpointSummaryRow,
  type EventStoreCatalog,
  type ListStreamsOptions,
  type StreamSummary,
  type StreamSummaryRow,
} from '../store/catalog.js';
import type { StoredRunnerError } from '../projections/runner-error.js';
import { SqliteDeadLetterStore } from './projection-dead-letters.js';
import { listRunnerErrors } from './projection-errors.js';
import type { SqliteEventStore } from './sqlite-event-store.js';

function tableExists(db: BetterSqlite3.Database, name: string): boolean {
  return db.prepare(`SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?`).pluck().get(name) !== undefined;
}

/**
 * Read-only queries over a SQLite store's file for tools: the streams it holds and the
 * projections' checkpoints and locks. Not part of the `EventStore` port.
 */
export class SqliteCatalog implements EventStoreCatalog {
  constructor(private readonly store: SqliteEventStore) {}

  private get db(): BetterSqlite3.Database {
    return this.store.database;
  }

  async listStreams(options?: ListStreamsOptions): Promise<StreamSummary[]> {
    const { prefix, after, limit } = resolveListStreamsOptions(options);
    // SQLite's BINARY collation compares UTF-8 bytes: code point order. The range on stream_id
    // lets the (stream_id, version) index skip to the prefix; MAX(position) makes the bare
    // columns come from each stream's last event.
    const lower = after !== undefined && after >= prefix ? after : prefix;
    const strict = after !== undefined && after >= prefix ? 1 : 0;
    const rows = this.db
      .prepare<[string, number, string, number, string, string, number], StreamSummaryRow>(
        `SELECT stream_id, version, recorded_at, MAX(position) AS position
           FROM eventfold_events
          WHERE (stream_id > ? OR (? = 0 AND stream_id = ?))
            AND (? = 0 OR substr(stream_id, 1, length(?)) = ?)
          GROUP BY stream_id
          ORDER BY stream_id
          LIMIT ?`,
      )
      .all(lower, strict, lower, prefix.length, prefix, prefix, limit);
    return rows.map(streamSummaryFromRow);
  }

  /** Every stored projection checkpoint, by name. Empty when no projection ever ran here. */
  async listCheckpoints(): Promise<CheckpointSummary[]> {
    if (!tableExists(this.db, 'eventfold_projection_checkpoints')) return [];
    const rows = this.db
      .prepare<[], CheckpointSummaryRow>(
        'SELECT name, position, version, updated_at FROM eventfold_projection_checkpoints ORDER BY name',
      )
      .all();
    return rows.map(checkpointSummaryFromRow);
  }

  /** The runners' last faults by projection (empty for a file whose schema predates them). */
  async listErrors(): Promise<Map<string, StoredRunnerError>> {
    return listRunnerErrors(this.db);
  }

  /** Who holds the projection's runner lock now (an unexpired lock row), if anyone. */
  async lockHolder(projection: string): Promise<string | undefined> {
    if (!tableExists(this.db, 'eventfold_projection_locks')) return undefined;
    const owner = this.db
      .prepare<[string, number], string>('SELECT owner FROM eventfold_projection_locks WHERE name = ? AND expires_at >= ?')
      .pluck()
      .get(projection, Date.now());
    return owner;
  }

  /** The file's dead-letter store, or undefined when no projection schema with dead letters exists yet. */
  async deadLetters(): Promise<SqliteDeadLetterStore | undefined> {
    return tableExists(this.db, 'eventfold_projection_dead_letters') ? new SqliteDeadLetterStore(this.db) : undefined;
  }
}
