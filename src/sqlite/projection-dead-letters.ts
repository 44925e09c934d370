import type BetterSqlite3 from 'better-sqlite3';
import {
  assertValidPosition,
  deadLetterFromRow,
  resolveListOptions,
  type DeadLetter,
  type DeadLetterRow,
  type DeadLetterListOptions,
  type StandaloneDeadLetterStore,
  type DeadLetterWrite,
} from '../projections/dead-letters.js';
import { assertValidProjectionName } from '../projections/projection.js';
import { translateSqliteError } from './connection.js';
import { PROJECTION_MIGRATIONS, PROJECTIONS_COMPONENT } from './projection-schema.js';
import { migrateSchema } from './schema.js';

const COLUMNS = 'projection, position, event_id, event_type, stream_id, stream_version, error, attempts, parked_at, retry_requested';

/**
 * Parked events in `eventfold_projection_dead_letters` of the store's file. The runner writes
 * them with `writeIn` inside the batch's transaction, so a letter and the checkpoint that moved
 * past its event commit together. Creates (migrates) the projection tables on first use.
 */
export class SqliteDeadLetterStore implements StandaloneDeadLetterStore {
  private migrated = false;

  constructor(private readonly db: BetterSqlite3.Database) {}

  async list(projection: string, options?: DeadLetterListOptions): Promise<DeadLetter[]> {
    const { limit, after } = resolveListOptions(projection, options);
    const rows = this.run(() =>
      this.db
        .prepare(`SELECT ${COLUMNS} FROM eventfold_projection_dead_letters WHERE projection = ? AND position > ? ORDER BY position LIMIT ?`)
        .all(projection, after, limit),
    ) as DeadLetterRow[];
    return rows.map(deadLetterFromRow);
  }

  async count(projection: string): Promise<number> {
    assertValidProjectionName(projection);
    return this.run(() =>
      this.db.prepare('SELECT count(*) FROM eventfold_projection_dead_letters WHERE projection = ?').pluck().get(projection),
    ) as number;
  }

  async retry(projection: string, position: number): Promise<boolean> {
    assertValidProjectionName(projection);
    assertValidPosition(position);
    const sql = 'UPDATE eventfold_projection_dead_letters SET retry_requested = 1 WHERE projection = ? AND position = ?';
    return this.run(() => this.db.prepare(sql).run(projection, position).changes) === 1;
  }

  async discard(projection: string, position: number): Promise<boolean> {
    assertValidProjectionName(projection);
    assertValidPosition(position);
    const sql = 'DELETE FROM eventfold_projection_dead_letters WHERE projection = ? AND position = ?';
    return this.run(() => this.db.prepare(sql).run(projection, position).changes) === 1;
  }

  async retryRequested(projection: string, limit: number): Promise<DeadLetter[]> {
    const sql = `SELECT ${COLUMNS} FROM eventfold_projection_dead_letters WHERE projection = ? AND retry_requested = 1 ORDER BY position LIMIT ?`;
    return (this.run(() => this.db.prepare(sql).all(projection, limit)) as DeadLetterRow[]).map(deadLetterFromRow);
  }

  /** Writes a change on its own (subscriptions and relays, whose checkpoint is saved after it). */
  write(projection: string, write: DeadLetterWrite): void {
    assertValidProjectionName(projection);
    this.run(() => this.writeIn(projection, write));
  }

  /** Writes a runner's change; call inside a transaction on the same connection. */
  writeIn(projection: string, write: DeadLetterWrite): void {
    switch (write.kind) {
      case 'park': {
        const l = write.letter;
        this.db
          .prepare(
            `INSERT INTO eventfold_projection_dead_letters (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)
             ON CONFLICT (projection, position) DO UPDATE SET error = excluded.error, attempts = excluded.attempts,
               parked_at = excluded.parked_at, retry_requested = 0`,
          )
          .run(projection, l.position, l.eventId, l.eventType, l.streamId, l.streamVersion, l.error, l.attempts, l.parkedAt.getTime());
        return;
      }
      case 'resolve':
        this.db.prepare('DELETE FROM eventfold_projection_dead_letters WHERE projection = ? AND position = ?').run(projection, write.position);
        return;
      case 'retry-failed':
        this.db
          .prepare(
            `UPDATE eventfold_projection_dead_letters SET error = ?, attempts = attempts + 1, retry_requested = 0
             WHERE projection = ? AND position = ?`,
          )
          .run(write.error, projection, write.position);
        return;
      case 'clear':
        this.db.prepare('DELETE FROM eventfold_projection_dead_letters WHERE projection = ?').run(projection);
        return;
    }
  }

  private run<T>(fn: () => T): T {
    try {
      if (!this.migrated) {
        migrateSchema(this.db, PROJECTIONS_COMPONENT, PROJECTION_MIGRATIONS);
        this.migrated = true;
      }
      return fn();
    } catch (error) {
      throw translateSqliteError(error, 'SQLite dead letters');
    }
  }
}
