import type BetterSqlite3 from 'better-sqlite3';
import { defineProjection, type Logger } from 'eventfold';
import { SqliteProjectionTarget, type SqliteProjectionContext } from 'eventfold/sqlite';
import { FORGOTTEN_EMAIL, type UserEvent } from '../domain/user.js';
import { rowToView, userIdOf, type UserPage, type UserReadModel, type UserRow } from './user-view.js';

const TABLE = `CREATE TABLE IF NOT EXISTS users (
  id            TEXT PRIMARY KEY,
  user_name     TEXT NOT NULL,
  email         TEXT NOT NULL,
  status        TEXT NOT NULL,
  version       INTEGER NOT NULL,
  registered_at TEXT NOT NULL,
  updated_at    TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS users_user_name ON users (user_name);
CREATE INDEX IF NOT EXISTS users_registered ON users (registered_at, id);`;

// Every update is guarded by `version < ?`: applying an event twice changes nothing (idempotent).
const statements = new WeakMap<BetterSqlite3.Database, ReturnType<typeof prepare>>();
function prepare(db: BetterSqlite3.Database) {
  return {
    register: db.prepare(
      `INSERT INTO users (id, user_name, email, status, version, registered_at, updated_at)
       VALUES (?, ?, ?, 'active', ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
    ),
    touch: db.prepare('UPDATE users SET version = ?, updated_at = ? WHERE id = ? AND version < ?'),
    email: db.prepare('UPDATE users SET email = ?, version = ?, updated_at = ? WHERE id = ? AND version < ?'),
    rename: db.prepare('UPDATE users SET user_name = ?, version = ?, updated_at = ? WHERE id = ? AND version < ?'),
    deactivate: db.prepare(`UPDATE users SET status = 'deactivated', version = ?, updated_at = ? WHERE id = ? AND version < ?`),
    forget: db.prepare(`UPDATE users SET email = ?, status = 'deactivated', version = ?, updated_at = ? WHERE id = ? AND version < ?`),
  };
}
function sql(db: BetterSqlite3.Database) {
  let cached = statements.get(db);
  if (cached === undefined) {
    cached = prepare(db);
    statements.set(db, cached);
  }
  return cached;
}

/** The `users` read model, kept in the same SQLite file as the events. */
export const sqliteUsersProjection = defineProjection<UserEvent, SqliteProjectionContext>({
  name: 'users',
  version: 1,
  setup: ({ db }) => {
    db.exec(TABLE);
  },
  reset: ({ db }) => {
    db.exec('DELETE FROM users');
  },
  handlers: {
    UserRegistered: (e, { db }) => {
      sql(db).register.run(userIdOf(e.streamId), e.data.userName, e.data.email, e.version, e.data.registeredAt, e.data.registeredAt);
    },
    PasswordChanged: (e, { db }) => {
      sql(db).touch.run(e.version, e.data.changedAt, userIdOf(e.streamId), e.version);
    },
    EmailChanged: (e, { db }) => {
      sql(db).email.run(e.data.email, e.version, e.data.changedAt, userIdOf(e.streamId), e.version);
    },
    UserRenamed: (e, { db }) => {
      sql(db).rename.run(e.data.userName, e.version, e.data.renamedAt, userIdOf(e.streamId), e.version);
    },
    UserDeactivated: (e, { db }) => {
      sql(db).deactivate.run(e.version, e.data.deactivatedAt, userIdOf(e.streamId), e.version);
    },
    UserForgotten: (e, { db }) => {
      sql(db).forget.run(FORGOTTEN_EMAIL, e.version, e.data.forgottenAt, userIdOf(e.streamId), e.version);
      redactionsPending.add(db);
    },
  },
});

/** Databases whose read model forgot a user since their last WAL checkpoint (see `RedactingSqliteTarget`). */
const redactionsPending = new WeakSet<BetterSqlite3.Database>();

/**
 * The projection target for the read model when a runner feeds it (on a connection with
 * `secure_delete` on, so freed bytes are zeroed): after a batch that forgot a user commits, it checkpoints the WAL in TRUNCATE mode, so the old email
 * leaves the `-wal` file and the database file at once instead of at the next automatic
 * checkpoint. SqliteProjectionTarget commits synchronously within `commit`, so the checkpoint runs
 * before any query can see the redaction. A checkpoint kept from completing (another connection
 * reading the file) is reported and tried again after the next batch.
 */
export class RedactingSqliteTarget extends SqliteProjectionTarget {
  constructor(
    store: ConstructorParameters<typeof SqliteProjectionTarget>[0],
    private readonly logger: Logger,
  ) {
    super(store);
  }

  override commit(...args: Parameters<SqliteProjectionTarget['commit']>): Promise<void> {
    const committed = super.commit(...args);
    const db = this.store.database;
    if (redactionsPending.has(db)) {
      const [result] = db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
      if (result === undefined || result.busy === 0) redactionsPending.delete(db);
      else this.logger.warn('The read model forgot a user, but its WAL could not be checkpointed yet; trying again after the next batch.');
    }
    return committed;
  }
}


/** Queries over the `users` table. Reads only; the projection is the only writer. */
export function sqliteUserReadModel(db: BetterSqlite3.Database): UserReadModel {
  db.exec(TABLE);
  const page = db.prepare('SELECT * FROM users ORDER BY registered_at, id LIMIT ? OFFSET ?');
  const count = db.prepare('SELECT count(*) AS total FROM users');
  const byId = db.prepare('SELECT * FROM users WHERE id = ?');
  const byName = db.prepare(`SELECT * FROM users WHERE user_name = ? AND status = 'active'`);
  return {
    async list({ limit, offset }): Promise<UserPage> {
      const users = (page.all(limit, offset) as UserRow[]).map(rowToView);
      const { total } = count.get() as { total: number };
      return { users, total, limit, offset };
    },
    async byId(id) {
      const row = byId.get(id) as UserRow | undefined;
      return row && rowToView(row);
    },
    async byUserName(userName) {
      const row = byName.get(userName.trim().toLowerCase()) as UserRow | undefined;
      return row && rowToView(row);
    },
  };
}
