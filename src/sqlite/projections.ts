import type BetterSqlite3 from 'better-sqlite3';
import { InvalidArgumentError } from '../errors.js';
import type { AnyEvent } from '../events/types.js';
import type { CheckpointStore, StoredCheckpoint } from '../projections/checkpoint-store.js';
import type { DeadLetterWrite } from '../projections/dead-letters.js';
import { CheckpointConflictError } from '../projections/errors.js';
import { applyEventsSync, assertValidProjectionName, runHookSync, type MaybePromise, type Projection } from '../projections/projection.js';
import { ProjectionRunner, type ProjectionRunnerSettings } from '../projections/runner.js';
import type { Checkpoint, ProjectionLease, ProjectionLock, ProjectionTarget } from '../projections/target.js';
import { translateSqliteError } from './connection.js';
import { SqliteDeadLetterStore } from './projection-dead-letters.js';
import { readRunnerError, writeRunnerError } from './projection-errors.js';
import type { StoredRunnerError } from '../projections/runner-error.js';
import { PROJECTION_MIGRATIONS, PROJECTIONS_COMPONENT } from './projection-schema.js';
import { migrateSchema } from './schema.js';
import { classifySqliteError } from './sqlite-transient.js';
import type { SqliteEventStore } from './sqlite-event-store.js';

/** What SQLite projection handlers get: the store's connection, inside the batch's transaction. */
export interface SqliteProjectionContext {
  readonly db: BetterSqlite3.Database;
}

export { PROJECTION_MIGRATIONS, PROJECTIONS_COMPONENT } from './projection-schema.js';

interface CheckpointRow {
  position: number;
  version: number;
}

/**
 * Checkpoints in table `eventfold_projection_checkpoints`. `compareAndSetIn` runs inside a caller's
 * transaction, which is how a runner commits read model and checkpoint together.
 */
export class SqliteCheckpointStore implements CheckpointStore {
  private readonly select: BetterSqlite3.Statement<[string], CheckpointRow>;
  private readonly insert: BetterSqlite3.Statement<[string, number, number, number]>;
  private readonly update: BetterSqlite3.Statement<[number, number, number, string, number, number]>;
  private readonly remove: BetterSqlite3.Statement<[string]>;

  constructor(private readonly db: BetterSqlite3.Database) {
    try {
      migrateSchema(db, PROJECTIONS_COMPONENT, PROJECTION_MIGRATIONS);
    } catch (error) {
      throw translateSqliteError(error, 'SqliteCheckpointStore (create its table)');
    }
    this.select = db.prepare('SELECT position, version FROM eventfold_projection_checkpoints WHERE name = ?');
    this.insert = db.prepare(
      `INSERT INTO eventfold_projection_checkpoints (name, position, version, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (name) DO NOTHING`,
    );
    this.update = db.prepare(
      `UPDATE eventfold_projection_checkpoints SET position = ?, version = ?, updated_at = ?
       WHERE name = ? AND position = ? AND version = ?`,
    );
    this.remove = db.prepare('DELETE FROM eventfold_projection_checkpoints WHERE name = ?');
  }

  get(projection: string): Checkpoint | undefined {
    let row: CheckpointRow | undefined;
    try {
      row = this.select.get(projection);
    } catch (error) {
      throw translateSqliteError(error, 'SqliteCheckpointStore');
    }
    return row === undefined ? undefined : { position: row.position, version: row.version };
  }

  /** Moves the checkpoint from `expected` to `next`; call inside a transaction on the same connection. */
  compareAndSetIn(projection: string, expected: Checkpoint | undefined, next: Checkpoint): void {
    const now = Date.now();
    let changed: number;
    try {
      changed =
        expected === undefined
          ? this.insert.run(projection, next.position, next.version, now).changes
          : this.update.run(next.position, next.version, now, projection, expected.position, expected.version).changes;
    } catch (error) {
      throw translateSqliteError(error, 'SqliteCheckpointStore');
    }
    if (changed !== 1) throw new CheckpointConflictError(projection, expected, this.get(projection));
  }

  async load(projection: string): Promise<Checkpoint | undefined> {
    assertValidProjectionName(projection);
    return this.get(projection);
  }

  async save(projection: string, expected: Checkpoint | undefined, next: Checkpoint): Promise<void> {
    assertValidProjectionName(projection);
    try {
      this.db.transaction(() => this.compareAndSetIn(projection, expected, next)).immediate();
    } catch (error) {
      throw translateSqliteError(error, 'SqliteCheckpointStore');
    }
  }

  async list(): Promise<StoredCheckpoint[]> {
    try {
      const rows = this.db.prepare('SELECT name, position, version FROM eventfold_projection_checkpoints ORDER BY name').all() as {
        name: string;
        position: number;
        version: number;
      }[];
      return rows.map((r) => Object.freeze({ projection: r.name, position: r.position, version: r.version }));
    } catch (error) {
      throw translateSqliteError(error, 'SqliteCheckpointStore');
    }
  }

  async delete(projection: string): Promise<void> {
    try {
      this.remove.run(projection);
      writeRunnerError(this.db, projection, undefined);
    } catch (error) {
      throw translateSqliteError(error, 'SqliteCheckpointStore');
    }
  }

  async saveError(projection: string, error: StoredRunnerError | undefined): Promise<void> {
    assertValidProjectionName(projection);
    writeRunnerError(this.db, projection, error);
  }

  async loadError(projection: string): Promise<StoredRunnerError | undefined> {
    assertValidProjectionName(projection);
    return readRunnerError(this.db, projection);
  }
}

/**
 * The read model in the event store's SQLite file: each batch's handlers and the checkpoint run in
 * one write transaction on the store's connection (exactly-once). Handlers are synchronous.
 */
export class SqliteProjectionTarget implements ProjectionTarget<SqliteProjectionContext> {
  readonly delivery = 'exactly-once' as const;
  readonly synchronous = true;
  readonly classifyError = classifySqliteError;
  private checkpointStore: SqliteCheckpointStore | undefined;
  private deadLetterStore: SqliteDeadLetterStore | undefined;

  constructor(readonly store: SqliteEventStore) {}

  /** Created (and the projection tables migrated) on first use, so a busy file fails in the runner's retry loop. */
  get checkpoints(): SqliteCheckpointStore {
    if (this.checkpointStore === undefined) {
      try {
        this.checkpointStore = new SqliteCheckpointStore(this.store.database);
      } catch (error) {
        throw translateSqliteError(error, 'SqliteProjectionTarget');
      }
    }
    return this.checkpointStore;
  }

  get deadLetters(): SqliteDeadLetterStore {
    // Cheap and without I/O: the store migrates the projection tables on first use.
    this.deadLetterStore ??= new SqliteDeadLetterStore(this.store.database);
    return this.deadLetterStore;
  }

  async prepare(): Promise<void> {
    void this.checkpoints;
  }

  async readCheckpoint(projection: string): Promise<Checkpoint | undefined> {
    return this.checkpoints.get(projection);
  }

  recordError(projection: string, error: StoredRunnerError | undefined): Promise<void> {
    return this.checkpoints.saveError(projection, error);
  }

  readError(projection: string): Promise<StoredRunnerError | undefined> {
    return this.checkpoints.loadError(projection);
  }

  async commit(
    projection: string,
    expected: Checkpoint | undefined,
    next: Checkpoint | undefined,
    work: (ctx: SqliteProjectionContext) => MaybePromise<void>,
    deadLetter?: DeadLetterWrite,
  ): Promise<void> {
    const checkpoints = this.checkpoints;
    const deadLetters = deadLetter === undefined ? undefined : this.deadLetters;
    this.store.transaction((db) => {
      // Checkpoint first: a competing runner's stale batch fails before running any handler.
      if (next !== undefined) checkpoints.compareAndSetIn(projection, expected, next);
      runHookSync(projection, 'a handler', work, { db });
      if (deadLetter !== undefined) deadLetters!.writeIn(projection, deadLetter);
    });
  }
}

/**
 * One runner per projection across processes sharing the file: a row in
 * `eventfold_projection_locks` with an owner and an expiry, renewed by a heartbeat every third of
 * `ttlMs`. A crashed owner's row expires and another runner takes it over. A runner that misses
 * its renewals past the expiry reports the lock lost and stops (and the checkpoint's
 * compare-and-set still rejects a stale batch).
 */
export class SqliteProjectionLock implements ProjectionLock {
  private statements:
    | {
        readonly acquire: BetterSqlite3.Statement<[string, string, number, number]>;
        readonly renew: BetterSqlite3.Statement<[number, string, string]>;
        readonly release: BetterSqlite3.Statement<[string, string]>;
      }
    | undefined;

  constructor(
    private readonly db: BetterSqlite3.Database,
    private readonly ttlMs = 30_000,
  ) {
    if (!Number.isSafeInteger(ttlMs) || ttlMs < 30) {
      throw new InvalidArgumentError(`lockTtlMs must be an integer >= 30, got ${String(ttlMs)}.`);
    }
  }

  /** Migrates and prepares on first use: a busy file then fails a lock attempt (retried), not a constructor. */
  private prepared(): NonNullable<SqliteProjectionLock['statements']> {
    if (this.statements !== undefined) return this.statements;
    const db = this.db;
    migrateSchema(db, PROJECTIONS_COMPONENT, PROJECTION_MIGRATIONS);
    this.statements = {
      acquire: db.prepare(
        `INSERT INTO eventfold_projection_locks (name, owner, expires_at) VALUES (?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
         WHERE eventfold_projection_locks.owner = excluded.owner OR eventfold_projection_locks.expires_at < ?`,
      ),
      renew: db.prepare('UPDATE eventfold_projection_locks SET expires_at = ? WHERE name = ? AND owner = ?'),
      release: db.prepare('DELETE FROM eventfold_projection_locks WHERE name = ? AND owner = ?'),
    };
    return this.statements;
  }

  async tryAcquire(projection: string, owner: string): Promise<ProjectionLease | undefined> {
    const now = Date.now();
    let statements: NonNullable<SqliteProjectionLock['statements']>;
    let changes: number;
    try {
      statements = this.prepared();
      changes = statements.acquire.run(projection, owner, now + this.ttlMs, now).changes;
    } catch (error) {
      // Another process holding the write lock past busyTimeout: SQLITE_BUSY, retried by the runner.
      throw translateSqliteError(error, 'SqliteProjectionLock');
    }
    if (changes !== 1) return undefined;
    let expiresAt = now + this.ttlMs;
    let lostListener: ((reason: string, cause?: unknown) => void) | undefined;
    let lost = false;
    const loseLock = (reason: string, cause?: unknown): void => {
      if (lost) return;
      lost = true;
      clearInterval(heartbeat);
      lostListener?.(reason, cause);
    };
    const heartbeat = setInterval(() => {
      const at = Date.now();
      try {
        if (statements.renew.run(at + this.ttlMs, projection, owner).changes === 1) {
          expiresAt = at + this.ttlMs;
        } else {
          loseLock('another runner took the lock over after it expired');
        }
      } catch (error) {
        // A busy database is retried at the next beat, unless the lock has expired meanwhile.
        if (Date.now() >= expiresAt) loseLock('the lock could not be renewed before it expired', error);
      }
    }, Math.max(10, Math.floor(this.ttlMs / 3)));
    heartbeat.unref?.();
    return {
      onLost: (listener) => {
        lostListener = listener;
      },
      release: async () => {
        clearInterval(heartbeat);
        try {
          if (!lost) statements.release.run(projection, owner);
        } catch {
          // The row expires by itself; a standby takes it over then.
        } finally {
          lost = true;
        }
      },
    };
  }
}

export interface SqliteProjectionRunnerOptions extends ProjectionRunnerSettings {
  /** How long a lock row stays valid without a heartbeat (crash takeover delay). Default 30,000 ms. */
  readonly lockTtlMs?: number;
}

/**
 * An async projection from a `SqliteEventStore` into tables of the same file, exactly-once: each
 * batch's read-model writes and checkpoint commit in one transaction. Woken by this process's
 * appends (`onAppended`); appends by other processes are found by polling (`pollIntervalMs`).
 */
export class SqliteProjectionRunner<E extends AnyEvent> extends ProjectionRunner<E, SqliteProjectionContext> {
  constructor(store: SqliteEventStore, projection: Projection<E, SqliteProjectionContext>, options: SqliteProjectionRunnerOptions = {}) {
    super({
      ...options,
      store,
      projection,
      target: new SqliteProjectionTarget(store),
      lock: new SqliteProjectionLock(store.database, options.lockTtlMs),
      wakeUps: (listener) => store.onAppended(() => listener()),
    });
  }
}

/**
 * Runs `projection` inside every append to `store`, in the append's write transaction: read model
 * and events commit together, and a throwing handler fails the append with nothing written.
 * Runs `setup` now. Returns a remover.
 */
export function addInlineSqliteProjection<E extends AnyEvent>(
  store: SqliteEventStore,
  projection: Projection<E, SqliteProjectionContext>,
): () => void {
  const setup = projection.setup;
  if (setup !== undefined) store.transaction((db) => runHookSync(projection.name, 'setup', setup, { db }));
  return store.addAppendHook((events, db) => applyEventsSync(projection, events, { db }));
}
