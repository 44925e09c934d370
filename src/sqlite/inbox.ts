import type BetterSqlite3 from 'better-sqlite3';
import { InvalidArgumentError } from '../errors.js';
import { assertInboxKey, type Inbox, type InboxOutcome } from '../publishing/inbox.js';
import { openConnection, translateSqliteError, type SqliteConnectionOptions, type SqliteTuningOptions } from './connection.js';

export type SqliteInboxOptions = SqliteConnectionOptions & SqliteTuningOptions;

/**
 * The consumer side of at-least-once delivery on SQLite: `handle` records (consumer, message id)
 * in the `eventfold_inbox` table and runs the message's effect in the same (immediate)
 * transaction, so a redelivered message commits its effect once. The effect gets the database
 * and must be synchronous (better-sqlite3 transactions are). Pass the consumer's own database.
 */
export class SqliteInbox implements Inbox<BetterSqlite3.Database> {
  readonly database: BetterSqlite3.Database;
  private readonly owned: boolean;
  private readonly insert: BetterSqlite3.Statement<[string, string, string]>;

  constructor(options: SqliteInboxOptions) {
    const connection = openConnection(options, 'SqliteInbox');
    this.database = connection.db;
    this.owned = connection.owned;
    this.migrate();
    this.insert = this.database.prepare(
      'INSERT INTO eventfold_inbox (consumer, message_id, processed_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
    );
  }

  /** Creates the `eventfold_inbox` table; idempotent (the constructor calls it). */
  migrate(): void {
    this.database.exec(
      'CREATE TABLE IF NOT EXISTS eventfold_inbox (consumer TEXT NOT NULL, message_id TEXT NOT NULL, ' +
        'processed_at TEXT NOT NULL, PRIMARY KEY (consumer, message_id)) WITHOUT ROWID',
    );
  }

  async handle(consumer: string, messageId: string, work: (db: BetterSqlite3.Database) => unknown): Promise<InboxOutcome> {
    assertInboxKey('consumer', consumer);
    assertInboxKey('message id', messageId);
    const run = this.database.transaction((): InboxOutcome => {
      if (this.insert.run(consumer, messageId, new Date().toISOString()).changes === 0) return 'duplicate';
      const result = work(this.database);
      if (result !== undefined && typeof (result as Promise<unknown>).then === 'function') {
        // The transaction would commit before the promise settles: refuse, and roll back.
        throw new InvalidArgumentError('SqliteInbox.handle: the work must be synchronous (better-sqlite3 transactions are).');
      }
      return 'processed';
    });
    try {
      return run.immediate();
    } catch (error) {
      throw translateSqliteError(error, `SqliteInbox: handle message '${messageId}'`);
    }
  }

  has(consumer: string, messageId: string): boolean {
    return this.database.prepare('SELECT 1 FROM eventfold_inbox WHERE consumer = ? AND message_id = ?').get(consumer, messageId) !== undefined;
  }

  /** Forgets ids processed before `before`; see `PostgresInbox.prune` for how long to keep them. */
  prune(before: Date): number {
    return this.database.prepare('DELETE FROM eventfold_inbox WHERE processed_at < ?').run(before.toISOString()).changes;
  }

  close(): void {
    if (this.owned && this.database.open) this.database.close();
  }
}
