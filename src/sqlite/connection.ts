import Database from 'better-sqlite3';
import type BetterSqlite3 from 'better-sqlite3';
import { InvalidArgumentError, StoreUnavailableError } from '../errors.js';
import { translateSqliteError } from './sqlite-errors.js';

export { translateSqliteError };

/**
 * How hard SQLite syncs to disk at commit (PRAGMA synchronous), in WAL mode:
 * - `FULL` (default): the WAL is synced at every commit; a committed append survives power loss.
 * - `EXTRA`: FULL plus a directory sync when the WAL is reset (paranoid setups).
 * - `NORMAL`: synced only at checkpoints; still never corrupts, and a process crash loses nothing,
 *   but the last commits can roll back after power loss or an OS crash. Much faster.
 * - `OFF`: no syncs at all. Only for throwaway data.
 */
export type SqliteSynchronous = 'OFF' | 'NORMAL' | 'FULL' | 'EXTRA';

const SYNCHRONOUS_LEVELS: readonly SqliteSynchronous[] = ['OFF', 'NORMAL', 'FULL', 'EXTRA'];

/** Where the data lives: a file path (or `':memory:'`), or a connection you opened yourself. */
export type SqliteConnectionOptions =
  | { readonly path: string; readonly database?: undefined }
  | { readonly database: BetterSqlite3.Database; readonly path?: undefined };

export interface SqliteTuningOptions {
  /** Default `'FULL'`. See `SqliteSynchronous`. */
  readonly synchronous?: SqliteSynchronous;
  /**
   * Milliseconds a writer waits for another connection's (or process's) write lock before failing
   * with `StoreUnavailableError`. Default 5000.
   */
  readonly busyTimeout?: number;
}

export const DEFAULT_BUSY_TIMEOUT_MS = 5000;

export interface SqliteConnection {
  readonly db: BetterSqlite3.Database;
  /** True when the store opened the connection (and so closes it). */
  readonly owned: boolean;
}

/**
 * Opens (or adopts) the connection and configures it: WAL journal, the chosen `synchronous`
 * level and a busy timeout. A connection passed in is configured the same way, because the
 * store's durability and multi-process guarantees depend on those settings.
 */
export function openConnection(options: SqliteConnectionOptions & SqliteTuningOptions, what: string): SqliteConnection {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError(`${what} needs options: { path } or { database }.`);
  }
  const synchronous = options.synchronous ?? 'FULL';
  if (!SYNCHRONOUS_LEVELS.includes(synchronous)) {
    throw new InvalidArgumentError(
      `${what}: synchronous must be one of ${SYNCHRONOUS_LEVELS.join(', ')}, got ${String(synchronous)}.`,
    );
  }
  const busyTimeout = options.busyTimeout ?? DEFAULT_BUSY_TIMEOUT_MS;
  if (!Number.isSafeInteger(busyTimeout) || busyTimeout < 0) {
    throw new InvalidArgumentError(`${what}: busyTimeout must be an integer number of ms >= 0, got ${String(busyTimeout)}.`);
  }
  const hasPath = options.path !== undefined;
  const hasDatabase = options.database !== undefined;
  if (hasPath === hasDatabase) {
    throw new InvalidArgumentError(`${what} takes exactly one of { path } or { database }.`);
  }

  let db: BetterSqlite3.Database;
  let owned: boolean;
  if (hasPath) {
    if (typeof options.path !== 'string' || options.path.length === 0) {
      throw new InvalidArgumentError(`${what}: path must be a non-empty file path or ':memory:'.`);
    }
    try {
      db = new Database(options.path, { timeout: busyTimeout });
    } catch (error) {
      throw openFailure(error, what, options.path);
    }
    owned = true;
  } else {
    const given = options.database as unknown as { prepare?: unknown; open?: unknown };
    if (typeof given !== 'object' || given === null || typeof given.prepare !== 'function') {
      throw new InvalidArgumentError(`${what}: database must be a better-sqlite3 Database.`);
    }
    if (given.open !== true) throw new InvalidArgumentError(`${what}: the database passed in is closed.`);
    db = options.database as BetterSqlite3.Database;
    owned = false;
  }

  try {
    // Safe to interpolate: both values were checked against a whitelist / as integers above.
    db.pragma(`busy_timeout = ${busyTimeout}`);
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${synchronous}`);
  } catch (error) {
    if (owned) db.close();
    throw translateSqliteError(error, what);
  }
  return { db, owned };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Why a file could not be opened: a missing directory is a wrong path, not an outage. */
function openFailure(error: unknown, what: string, path: string): unknown {
  if (error instanceof TypeError && error.message.includes('directory does not exist')) {
    return new InvalidArgumentError(`${what}: cannot open SQLite database '${path}': its directory does not exist. Create it first.`);
  }
  const translated = translateSqliteError(error, `${what}: cannot open SQLite database '${path}'`);
  return translated === error
    ? new StoreUnavailableError(`${what}: cannot open SQLite database '${path}': ${messageOf(error)}`, { cause: error })
    : translated;
}
