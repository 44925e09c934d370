import type BetterSqlite3 from 'better-sqlite3';
import { InvalidArgumentError, StoreClosedError, StreamNotFoundError } from '../errors.js';
import { assertReadableStreamId } from '../events/validation.js';
import { PRUNED_EVENT, STREAM_DELETED, type StreamPruning } from '../evolution/lifecycle.js';
import { openConnection, translateSqliteError, type SqliteConnectionOptions } from './connection.js';

/**
 * Physical removal of event payloads from a SQLite event store's file (see `StreamPruning`), on
 * its own connection (`{ path }` of the store's file, or the same `{ database }`). Rows are
 * rewritten as `$Pruned` placeholders with `secure_delete` on, so the old bytes are zeroed in the
 * file, and the WAL is checkpointed in TRUNCATE mode afterwards. `purgeDeletedStream` also
 * removes the stream's snapshots.
 */
export class SqliteStreamPruning implements StreamPruning {
  private readonly db: BetterSqlite3.Database;
  private readonly owned: boolean;
  private closed = false;

  constructor(options: SqliteConnectionOptions) {
    const connection = openConnection(options, 'SQLite stream pruning');
    this.db = connection.db;
    this.owned = connection.owned;
    this.db.pragma('secure_delete = ON');
  }

  async purgeDeletedStream(streamId: string): Promise<{ readonly removedEvents: number }> {
    assertReadableStreamId(streamId);
    return this.write(() => {
      const last = this.db
        .prepare('SELECT version, type FROM eventfold_events WHERE stream_id = ? ORDER BY version DESC LIMIT 1')
        .get(streamId) as { version: number; type: string } | undefined;
      if (last === undefined) throw new StreamNotFoundError(streamId);
      if (last.type !== STREAM_DELETED) {
        throw new InvalidArgumentError(`Stream '${streamId}' is not deleted: tombstone it before purging its events.`);
      }
      const removed = this.prune(streamId, last.version);
      const hasSnapshots = this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'eventfold_snapshots'").get();
      if (hasSnapshots !== undefined) this.db.prepare('DELETE FROM eventfold_snapshots WHERE stream_id = ?').run(streamId);
      return { removedEvents: removed };
    });
  }

  async truncateBefore(streamId: string, version: number): Promise<{ readonly removedEvents: number }> {
    assertReadableStreamId(streamId);
    if (!Number.isSafeInteger(version) || version < 1) {
      throw new InvalidArgumentError(`truncateBefore takes a version >= 1, got ${String(version)}.`);
    }
    return this.write(() => {
      const current = this.db
        .prepare('SELECT version FROM eventfold_events WHERE stream_id = ? ORDER BY version DESC LIMIT 1')
        .pluck()
        .get(streamId) as number | undefined;
      if (current === undefined) throw new StreamNotFoundError(streamId);
      if (version > current) {
        throw new InvalidArgumentError(`Stream '${streamId}' is at version ${current}: truncateBefore(${version}) would remove all of it.`);
      }
      return { removedEvents: this.prune(streamId, version) };
    });
  }

  /** Rewrites the stream's events below `version` as placeholders; returns how many it changed. */
  private prune(streamId: string, version: number): number {
    return this.db
      .prepare('UPDATE eventfold_events SET type = ?, data = ?, metadata = NULL WHERE stream_id = ? AND version < ? AND type <> ?')
      .run(PRUNED_EVENT, 'null', streamId, version, PRUNED_EVENT).changes;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.owned) this.db.close();
  }

  private write<T>(work: () => T): T {
    if (this.closed) throw new StoreClosedError('stream pruning');
    try {
      const result = this.db.transaction(work).immediate();
      this.db.pragma('wal_checkpoint(TRUNCATE)');
      return result;
    } catch (error) {
      throw translateSqliteError(error, 'SQLite stream pruning');
    }
  }
}
