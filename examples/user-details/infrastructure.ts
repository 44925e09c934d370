import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import pg from 'pg';
import { consoleLogger, type EventStore, type Logger, type ProjectionProgress, type SnapshotStore } from 'eventfold';
import {
  addInlineSqliteProjection,
  SqliteEventStore,
  SqliteKeyStore,
  SqliteProjectionLock,
  SqliteProjectionTarget,
  SqliteSnapshotStore,
} from 'eventfold/sqlite';
import {
  addInlinePostgresProjection,
  assertValidSchemaName,
  PostgresEventStore,
  PostgresKeyStore,
  PostgresProjectionLock,
  PostgresProjectionTarget,
  PostgresSnapshotStore,
  postgresWakeUps,
} from 'eventfold/postgres';
import { evolveStore, type EvolvedStore } from './evolution.js';
import { postgresUserReadModel, postgresUsersProjection } from './read-model/postgres-users.js';
import { sqliteUserReadModel, sqliteUsersProjection } from './read-model/sqlite-users.js';
import type { UserReadModel } from './read-model/user-view.js';
import type { WriteSide, WriteSideOptions } from './commands.js';

/**
 * How the `users` read model is kept: `inline` in each append's transaction (read-your-writes),
 * `async` by a checkpointed runner tailing the global log (eventually consistent), or `none` (a
 * write-only process; another process runs the projection).
 */
export type ProjectionMode = 'inline' | 'async' | 'none';

export interface ReadSide {
  readonly mode: ProjectionMode;
  /** Resolves when the read model has applied every event committed so far. */
  caughtUp(): Promise<void>;
  /** Empties the read model and replays the whole log into it (async mode), reporting progress. */
  rebuild(): Promise<void>;
  stop(): Promise<void>;
}

export interface Infrastructure {
  readonly kind: 'sqlite' | 'postgres' | 'nats';
  /** Where the events live, for humans. */
  readonly description: string;
  /** The store with the evolution and privacy layers (see evolution.ts); the raw store stays inside. */
  readonly store: EventStore;
  /** The evolution and privacy layers under `store`: idempotency, forget-me, the raw store. */
  readonly evolved: EvolvedStore;
  readonly snapshots: SnapshotStore;
  readonly readModel: UserReadModel;
  startReadSide(mode: ProjectionMode, onProgress?: (progress: ProjectionProgress) => void): Promise<ReadSide>;
  /** A write side of its own, for stores without atomic multi-stream appends (NATS). */
  readonly writeSide?: (options: WriteSideOptions) => WriteSide;
  close(): Promise<void>;
}

export interface InfrastructureOptions {
  /** Where operational problems go (a dropped idle database connection, ...). Default: the console. */
  readonly logger?: Logger;
}

/** PostgreSQL when DATABASE_URL is set, else the embedded SQLite default. */
export async function openInfrastructure(env: NodeJS.ProcessEnv = process.env, options: InfrastructureOptions = {}): Promise<Infrastructure> {
  const nats = env['EVENTFOLD_STORE'];
  if (nats !== undefined && /^(nats|tls):\/\//.test(nats)) return (await import('./nats/infrastructure.js')).openNats(nats, env, options);
  const url = env['DATABASE_URL'];
  if (url !== undefined && url !== '') return openPostgres(url, env['EVENTFOLD_PG_SCHEMA'] ?? 'user_details', options);
  const path = env['EVENTFOLD_SQLITE_PATH'] ?? resolve(env['EVENTFOLD_DATA_DIR'] ?? '.eventfold', 'user-details.sqlite');
  return openSqlite(path, options);
}

export function openSqlite(path: string, options: InfrastructureOptions = {}): Infrastructure {
  const logger = options.logger ?? consoleLogger;
  if (path !== ':memory:') mkdirSync(resolve(path, '..'), { recursive: true });
  const raw = new SqliteEventStore({ path });
  // The keys live in the same file; forgetting zeroes the key's bytes in it (secure_delete).
  const evolved = evolveStore(raw, new SqliteKeyStore({ database: raw.database }));
  const snapshots = evolved.snapshots(new SqliteSnapshotStore({ database: raw.database }));
  const readModel = sqliteUserReadModel(raw.database);
  const readSides: ReadSide[] = [];
  return {
    kind: 'sqlite',
    description: path === ':memory:' ? 'SQLite in memory' : `the SQLite file ${path}`,
    store: evolved.store,
    evolved,
    snapshots,
    readModel,
    async startReadSide(mode, onProgress) {
      const side = await startSide(
        mode,
        () => {
          const remove = addInlineSqliteProjection(raw, evolved.inline(sqliteUsersProjection));
          return async () => remove();
        },
        () =>
          evolved.runner(
            sqliteUsersProjection,
            { target: new SqliteProjectionTarget(raw), lock: new SqliteProjectionLock(raw.database), wakeUps: (wake) => raw.onAppended(() => wake()) },
            { pollIntervalMs: 250, logger, ...(onProgress === undefined ? {} : { onProgress }) },
          ),
      );
      readSides.push(side);
      return side;
    },
    async close() {
      for (const side of readSides) await side.stop();
      await snapshots.close();
      await raw.close();
    },
  };
}

export async function openPostgres(connectionString: string, schema: string, options: InfrastructureOptions = {}): Promise<Infrastructure> {
  assertValidSchemaName(schema);
  const logger = options.logger ?? consoleLogger;
  // A bounded connect wait: when the server is unreachable, requests fail fast (503) instead of queueing.
  const pool = new pg.Pool({ connectionString, max: 10, connectionTimeoutMillis: 5_000 });
  // An idle pooled connection that the server terminates (restart, failover, idle cull) is reported
  // on the pool; without a listener Node would crash the process. The pool replaces it on demand.
  pool.on('error', (error: Error & { code?: string }) => {
    logger.warn('PostgreSQL closed an idle pooled connection; it will be replaced on next use.', {
      ...(error.code === undefined ? {} : { code: error.code }),
      error: error.message,
    });
  });
  // Every connection keeps an 'error' listener for its whole life. The pool's own listener is
  // off while a connection is handed out, and a new connection is handed out (to a promise, which
  // resumes later) in the same step that reads its first bytes: a termination arriving right
  // behind the server's "ready" would otherwise be an unhandled 'error' event. The failure still
  // reaches whoever uses the connection (its query fails), so this only notes it.
  pool.on('connect', (client) => {
    client.on('error', (error: Error & { code?: string }) => {
      logger.debug('A PostgreSQL connection failed.', { ...(error.code === undefined ? {} : { code: error.code }), error: error.message });
    });
  });
  const raw = new PostgresEventStore({ pool, schema, logger });
  let evolved: EvolvedStore;
  try {
    await raw.migrate();
    evolved = evolveStore(raw, await PostgresKeyStore.create({ pool, schema }));
  } catch (error) {
    await pool.end();
    throw error;
  }
  const snapshots = evolved.snapshots(new PostgresSnapshotStore({ pool, schema }));
  const readModel = await postgresUserReadModel(pool, schema);
  const projection = postgresUsersProjection(schema);
  const readSides: ReadSide[] = [];
  const safeUrl = connectionString.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
  return {
    kind: 'postgres',
    description: `PostgreSQL (${safeUrl}, schema ${schema})`,
    store: evolved.store,
    evolved,
    snapshots,
    readModel,
    async startReadSide(mode, onProgress) {
      const side = await startSide(
        mode,
        async () => {
          const remove = await addInlinePostgresProjection(raw, evolved.inline(projection));
          return async () => remove();
        },
        () =>
          evolved.runner(
            projection,
            { target: new PostgresProjectionTarget(raw), lock: new PostgresProjectionLock(pool, schema), wakeUps: postgresWakeUps(raw) },
            { logger, ...(onProgress === undefined ? {} : { onProgress }) },
          ),
      );
      readSides.push(side);
      return side;
    },
    async close() {
      for (const side of readSides) await side.stop();
      await snapshots.close();
      await raw.close();
      await pool.end();
    },
  };
}

interface Runner {
  start(): Promise<void>;
  rebuild(options?: { timeoutMs?: number }): Promise<void>;
  stop(): Promise<void>;
  waitUntilCaughtUp(options?: { timeoutMs?: number }): Promise<void>;
}

async function startSide(
  mode: ProjectionMode,
  inline: () => Promise<() => Promise<void>> | (() => Promise<void>),
  runner: () => Runner,
): Promise<ReadSide> {
  const nothing = async (): Promise<void> => undefined;
  if (mode === 'none') return { mode, caughtUp: nothing, rebuild: nothing, stop: nothing };
  if (mode === 'inline') {
    // Inline: the read model commits with each append, so it is always caught up.
    const remove = await inline();
    return { mode, caughtUp: nothing, rebuild: nothing, stop: remove };
  }
  const async = runner();
  await async.start();
  let stopped = false;
  return {
    mode,
    caughtUp: () => async.waitUntilCaughtUp({ timeoutMs: 60_000 }),
    rebuild: () => async.rebuild({ timeoutMs: 600_000 }),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await async.stop();
    },
  };
}
