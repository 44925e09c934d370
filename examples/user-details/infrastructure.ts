import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import pg from 'pg';
import type { EventStore, ProjectionProgress, SnapshotStore } from 'eventfold';
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
  readonly kind: 'sqlite' | 'postgres';
  /** Where the events live, for humans. */
  readonly description: string;
  /** The store with the evolution and privacy layers (see evolution.ts); the raw store stays inside. */
  readonly store: EventStore;
  readonly evolved: EvolvedStore;
  readonly snapshots: SnapshotStore;
  readonly readModel: UserReadModel;
  startReadSide(mode: ProjectionMode, onProgress?: (progress: ProjectionProgress) => void): Promise<ReadSide>;
  close(): Promise<void>;
}

/** PostgreSQL when DATABASE_URL is set, else the embedded SQLite default. */
export async function openInfrastructure(env: NodeJS.ProcessEnv = process.env): Promise<Infrastructure> {
  const url = env['DATABASE_URL'];
  if (url !== undefined && url !== '') return openPostgres(url, env['EVENTFOLD_PG_SCHEMA'] ?? 'user_details');
  const path = env['EVENTFOLD_SQLITE_PATH'] ?? resolve(env['EVENTFOLD_DATA_DIR'] ?? '.eventfold', 'user-details.sqlite');
  return openSqlite(path);
}

export function openSqlite(path: string): Infrastructure {
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
            { pollIntervalMs: 250, ...(onProgress === undefined ? {} : { onProgress }) },
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

export async function openPostgres(connectionString: string, schema: string): Promise<Infrastructure> {
  assertValidSchemaName(schema);
  const pool = new pg.Pool({ connectionString, max: 10 });
  const raw = new PostgresEventStore({ pool, schema });
  await raw.migrate();
  const evolved = evolveStore(raw, await PostgresKeyStore.create({ pool, schema }));
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
            onProgress === undefined ? {} : { onProgress },
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
