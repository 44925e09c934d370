import pg from 'pg';
import type { Pool, PoolClient, PoolConfig, QueryArrayConfig, QueryArrayResult, QueryConfig, QueryResult, QueryResultRow } from 'pg';
import { InvalidArgumentError, isEventfoldError, StoreClosedError, StoreUnavailableError } from '../errors.js';
import { consoleLogger, type Logger } from '../logging.js';
import { CONFLICT_SQLSTATE, isConnectionError, isQueryTimeout, translatePgError } from './pg-errors.js';
import { assertValidSchemaName, DEFAULT_POSTGRES_SCHEMA } from './schema-name.js';

/**
 * Where a store gets its connections: a connection string (the store creates a pool and ends it on
 * `close()`) or a `pg.Pool` you own (the store never ends it). Either way the library listens for
 * the pool's `'error'` events (an idle connection dropped by a server restart or a proxy), which
 * Node would otherwise treat as an uncaught exception, and reports them to `logger`.
 */
export type PostgresConnectionOptions =
  | {
      readonly connectionString: string;
      /**
       * Extra settings for the pool the store creates (`max`, timeouts, `ssl`, …), over
       * `POSTGRES_POOL_DEFAULTS` (query timeout, connect timeout, TCP keepalive).
       */
      readonly poolConfig?: Omit<PoolConfig, 'connectionString'>;
      readonly pool?: undefined;
      /** Where dropped idle connections and failed notifications are reported. Default `consoleLogger`. */
      readonly logger?: Logger;
    }
  | {
      readonly pool: Pool;
      readonly connectionString?: undefined;
      readonly poolConfig?: undefined;
      /** Where dropped idle connections and failed notifications are reported. Default `consoleLogger`. */
      readonly logger?: Logger;
    };

/**
 * Settings of the pools the library creates from a connection string, each overridable through
 * `poolConfig`. Without them a connection whose packets are dropped (no reset: a failed host or
 * a firewall forgetting the connection) hangs a call until the operating system gives up, which
 * takes many minutes. `query_timeout` (client side: no answer within it fails the call with
 * `StoreTimeoutError` and drops the connection) is long enough for any statement the library
 * runs; `migrate()` is exempt (it may wait for another process's migration), and `0` turns it
 * off. `connectionTimeoutMillis` also bounds the wait for a free pooled connection.
 * `idle_in_transaction_session_timeout` makes the server end a session left idle inside a
 * transaction (its client gone without a reset reaching the server), releasing its locks.
 */
export const POSTGRES_POOL_DEFAULTS = Object.freeze({
  connectionTimeoutMillis: 15_000,
  query_timeout: 60_000,
  keepAlive: true,
  keepAliveInitialDelayMillis: 10_000,
  // Server side: a session whose client vanished mid-transaction (its goodbye lost too) would hold
  // its stream locks, and keep readers from passing its positions, until the server's own TCP
  // keepalive gives up (hours by default).
  idle_in_transaction_session_timeout: 60_000,
} satisfies PoolConfig);

/** The `query_timeout` of statements that may wait a long time on purpose (migrations). */
export const LONG_QUERY_TIMEOUT_MS = 2_147_483_647;

const guardedPools = new WeakSet<Pool>();

/**
 * Makes sure an `'error'` event of `pool` (an idle client's connection dropped) never becomes an
 * uncaught exception: listens once per pool, whoever created it, and reports to `logger`. The pool
 * discards the broken client by itself; the next checkout opens a new connection.
 */
export function guardPool(pool: Pool, logger: Logger = consoleLogger): void {
  if (guardedPools.has(pool)) return;
  guardedPools.add(pool);
  pool.on('error', (error: Error) => {
    const code = (error as { code?: unknown }).code;
    logger.warn(`PostgreSQL dropped an idle pooled connection (the pool replaces it): ${error.message}`, {
      ...(typeof code === 'string' ? { code } : {}),
    });
  });
}

/**
 * Checks a client out of `pool` for `fn`, with an `'error'` listener for as long as it is out (a
 * checked-out client has none of the pool's), and destroys it instead of returning it to the pool
 * when its connection broke.
 */
export async function withPooledClient<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: unknown;
  const onError = (error: unknown): void => {
    broken = error;
  };
  client.on('error', onError);
  let failure: unknown;
  try {
    return await fn(client);
  } catch (error) {
    failure = error;
    throw error;
  } finally {
    release(client, onError, broken ?? (failure !== undefined && isBrokenConnection(failure) ? failure : undefined));
  }
}

function isBrokenConnection(error: unknown): boolean {
  return isConnectionError(error) || isConnectionError((error as { cause?: unknown } | null)?.cause) || isQueryTimeout(error);
}

export interface PostgresSchemaOptions {
  /** Schema holding the tables (default `eventfold`); lower-case letters, digits, `_`, at most 53. */
  readonly schema?: string;
}

/** A pool plus the store's lifecycle: closed checks and error translation around every call. */
export class PgConnection {
  readonly pool: Pool;
  readonly schema: string;
  /** Where the store reports what it cannot throw to a caller. */
  readonly logger: Logger;
  private readonly ownsPool: boolean;
  private closed = false;

  constructor(
    options: PostgresConnectionOptions & PostgresSchemaOptions,
    private readonly what: string,
  ) {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidArgumentError(`The ${what} needs { connectionString } or { pool }.`);
    }
    const schema = options.schema ?? DEFAULT_POSTGRES_SCHEMA;
    assertValidSchemaName(schema);
    this.schema = schema;
    this.logger = options.logger ?? consoleLogger;
    if (options.pool !== undefined) {
      if (!(options.pool instanceof pg.Pool) && typeof (options.pool as Partial<Pool>).connect !== 'function') {
        throw new InvalidArgumentError(`The ${what}'s 'pool' option must be a pg.Pool.`);
      }
      this.pool = options.pool;
      this.ownsPool = false;
      guardPool(this.pool, this.logger);
    } else if (typeof options.connectionString === 'string' && options.connectionString.length > 0) {
      this.pool = new pg.Pool({ ...POSTGRES_POOL_DEFAULTS, ...options.poolConfig, connectionString: options.connectionString });
      this.ownsPool = true;
      // An idle client whose connection drops emits 'error' on the pool, which removes the client;
      // without a listener Node would treat it as an uncaught exception and exit.
      guardPool(this.pool, this.logger);
    } else {
      throw new InvalidArgumentError(`The ${what} needs { connectionString } or { pool }.`);
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  assertOpen(): void {
    if (this.closed) throw new StoreClosedError(this.what);
  }

  async query<R extends QueryResultRow>(config: QueryConfig, action: string, write?: boolean): Promise<QueryResult<R>>;
  async query<R extends unknown[]>(config: QueryArrayConfig, action: string, write?: boolean): Promise<QueryArrayResult<R>>;
  async query(config: QueryConfig | QueryArrayConfig, action: string, write = false): Promise<unknown> {
    this.assertOpen();
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw this.translate(error, action, write);
    }
    let broken: unknown;
    const onError = (error: unknown): void => {
      broken = error;
    };
    client.on('error', onError);
    try {
      const result = await client.query(config as QueryConfig);
      release(client, onError, broken);
      return result;
    } catch (error) {
      // pg's pool.query drops the connection after any error. A failed expected-version check is an
      // ordinary answer that leaves the connection as good as new, and common under contention:
      // keep it (a new connection costs many times an append). Anything else: drop it, as pg does.
      const conflict = broken === undefined && (error as { code?: unknown } | null)?.code === CONFLICT_SQLSTATE;
      release(client, onError, conflict ? undefined : (broken ?? (error instanceof Error ? error : true)));
      throw this.translate(error, action, write);
    }
  }

  /**
   * Runs `fn` in a transaction on one client: BEGIN, fn, COMMIT; ROLLBACK and rethrow when `fn`
   * throws. A client whose connection broke is destroyed instead of returned to the pool.
   */
  async transaction<T>(action: string, fn: (client: PoolClient) => Promise<T>): Promise<T> {
    this.assertOpen();
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw this.translate(error, action, true);
    }
    // A checked-out client has no pool listener: a dropped connection between queries would
    // otherwise be an uncaught 'error' event.
    let broken: unknown;
    const onError = (error: unknown): void => {
      broken = error;
    };
    client.on('error', onError);
    let began = false;
    try {
      await client.query('BEGIN');
      began = true;
      const result = await fn(client);
      await client.query('COMMIT');
      release(client, onError, undefined);
      return result;
    } catch (error) {
      // A statement without an answer leaves the connection busy (or dead): ROLLBACK would only
      // wait behind it. Destroying the connection rolls the transaction back on the server.
      let destroy: unknown = broken ?? (isQueryTimeout(error) ? error : undefined);
      if (began && destroy === undefined) {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackError) {
          destroy = rollbackError;
        }
      } else if (!began) {
        destroy = error;
      }
      release(client, onError, destroy ?? broken);
      // The connection died under the transaction (its client errored, or not even ROLLBACK got
      // through): whatever `fn` reports — a hook or inline projection wraps the driver's error in
      // its own — the cause is a lost connection, and the append is worth retrying.
      if (
        began &&
        !this.closed &&
        (broken !== undefined || destroy !== undefined) &&
        !(error instanceof StoreUnavailableError) &&
        !isQueryTimeout(error)
      ) {
        throw new StoreUnavailableError(`The connection to PostgreSQL was lost while trying to ${action}; nothing was committed unless the commit itself was under way.`, {
          cause: error,
        });
      }
      throw this.translate(error, action, true);
    }
  }

  translate(error: unknown, action: string, write: boolean): unknown {
    if (this.closed) return new StoreClosedError(this.what);
    // A hook or inline projection may wrap the driver's timeout in its own error.
    if (isQueryTimeout(error) && !isEventfoldError(error)) {
      return translatePgError(timeoutOf(error), action, this.schema, write);
    }
    return translatePgError(error, action, this.schema, write);
  }

  /** Ends the pool the store created; a pool passed in stays open (its owner ends it). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsPool) await this.pool.end();
  }
}

/** The driver's own timeout error in a cause chain (see `isQueryTimeout`). */
function timeoutOf(error: unknown): unknown {
  let e = error;
  while (e instanceof Error && e.message !== 'Query read timeout' && (e as { cause?: unknown }).cause !== undefined) e = (e as { cause?: unknown }).cause;
  return e;
}

function ignoreError(): void {}

function release(client: PoolClient, onError: (error: unknown) => void, destroyWith: unknown): void {
  // A client being destroyed may still emit 'error' (the server's goodbye arrives late): keep it heard.
  if (destroyWith !== undefined) client.on('error', ignoreError);
  client.removeListener('error', onError);
  client.release(destroyWith === undefined ? undefined : destroyWith instanceof Error ? destroyWith : true);
}
