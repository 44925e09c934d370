import type BetterSqlite3 from 'better-sqlite3';
import { StoreClosedError } from '../errors.js';
import { SubjectForgottenError } from '../privacy/errors.js';
import { assertValidSubjectId, isPossibleSubjectId, newDataKey, type KeyStore, type SubjectKey } from '../privacy/key-store.js';
import { openConnection, translateSqliteError, type SqliteConnectionOptions } from './connection.js';

/**
 * Data keys for crypto-shredding in a SQLite table, `eventfold_subject_keys`. Keep it in its own
 * database file when you want the keys backed up (or not) apart from the events.
 *
 * `forget` overwrites the key with zeros, deletes it with `secure_delete` on (freed bytes are
 * zeroed), and checkpoints the WAL in TRUNCATE mode so no old page copy of the key stays in the
 * `-wal` file. Another connection holding a read transaction on the file can keep the checkpoint
 * from completing; `clearWal()` tries again and says whether it succeeded.
 */
export class SqliteKeyStore implements KeyStore {
  private readonly db: BetterSqlite3.Database;
  private readonly owned: boolean;
  private closed = false;

  constructor(options: SqliteConnectionOptions) {
    const connection = openConnection(options, 'SQLite key store');
    this.db = connection.db;
    this.owned = connection.owned;
    try {
      this.db.pragma('secure_delete = ON');
      this.db.exec(`
        CREATE TABLE IF NOT EXISTS eventfold_subject_keys (
          subject_id   TEXT PRIMARY KEY,
          key          BLOB,
          created_at   INTEGER NOT NULL,
          forgotten_at INTEGER,
          CHECK ((key IS NULL) = (forgotten_at IS NOT NULL))
        ) STRICT;
      `);
    } catch (error) {
      if (this.owned) this.db.close();
      throw translateSqliteError(error, 'SQLite key store');
    }
  }

  async keyFor(subjectId: string): Promise<Buffer> {
    this.assertOpen();
    assertValidSubjectId(subjectId);
    const row = this.run(() =>
      this.db.transaction(() => {
        this.db
          .prepare('INSERT INTO eventfold_subject_keys (subject_id, key, created_at) VALUES (?, ?, ?) ON CONFLICT (subject_id) DO NOTHING')
          .run(subjectId, newDataKey(), Date.now());
        return this.db.prepare('SELECT key FROM eventfold_subject_keys WHERE subject_id = ?').get(subjectId) as { key: Buffer | null };
      }).immediate(),
    );
    if (row.key === null) throw new SubjectForgottenError(subjectId);
    return row.key;
  }

  async lookup(subjectIds: readonly string[]): Promise<ReadonlyMap<string, SubjectKey>> {
    this.assertOpen();
    const found = new Map<string, SubjectKey>();
    const select = this.db.prepare('SELECT key, forgotten_at FROM eventfold_subject_keys WHERE subject_id = ?');
    this.run(() => {
      for (const id of subjectIds) {
        // SQLite stores text as UTF-8: an ill-formed id would find another subject's row.
        if (!isPossibleSubjectId(id)) continue;
        const row = select.get(id) as { key: Buffer | null; forgotten_at: number | null } | undefined;
        if (row === undefined) continue;
        found.set(id, row.key === null ? { status: 'forgotten', forgottenAt: new Date(row.forgotten_at ?? 0) } : { status: 'active', key: row.key });
      }
    });
    return found;
  }

  async forget(subjectId: string): Promise<void> {
    this.assertOpen();
    assertValidSubjectId(subjectId);
    this.run(() => {
      this.db.transaction(() => {
        const now = Date.now();
        this.db
          .prepare('INSERT INTO eventfold_subject_keys (subject_id, key, created_at, forgotten_at) VALUES (?, NULL, ?, ?) ON CONFLICT (subject_id) DO NOTHING')
          .run(subjectId, now, now);
        // Overwrite in place first, then drop: with secure_delete the old bytes are zeroed.
        this.db.prepare('UPDATE eventfold_subject_keys SET key = zeroblob(length(key)) WHERE subject_id = ? AND key IS NOT NULL').run(subjectId);
        this.db
          .prepare('UPDATE eventfold_subject_keys SET key = NULL, forgotten_at = ? WHERE subject_id = ? AND key IS NOT NULL')
          .run(now, subjectId);
      }).immediate();
    });
    this.clearWal();
  }

  /**
   * Checkpoints the WAL into the database file and truncates it, so no old page (with a key that
   * was since forgotten) stays in the `-wal` file. False when another connection's read
   * transaction kept it from completing; call again later.
   */
  clearWal(): boolean {
    this.assertOpen();
    return this.run(() => {
      const [checkpoint] = this.db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
      return checkpoint === undefined || checkpoint.busy === 0;
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.owned) this.db.close();
  }

  private run<T>(work: () => T): T {
    try {
      return work();
    } catch (error) {
      throw translateSqliteError(error, 'SQLite key store');
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreClosedError('key store');
  }
}
