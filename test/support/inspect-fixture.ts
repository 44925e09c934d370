import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EventStore } from '../../src/index.js';
import type { StoredRunnerError } from '../../src/projections/index.js';
import { PostgresCheckpointStore, PostgresEventStore } from '../../src/postgres/index.js';
import { SqliteCheckpointStore, SqliteEventStore } from '../../src/sqlite/index.js';
import { LiveCli, sourceUrl } from './cli-process.js';
import { NATS_URL, natsStores } from './nats.js';
import { DATABASE_URL, type PgTestDatabase } from './postgres.js';

/** A stream id and payloads that try to inject script into the event browser. */
export const XSS_STREAM = `user-<img src=x onerror="window.__xss='stream id'">`;
export const XSS_TYPE = '<b onmouseover="window.__xss=1">Evil</b>';
export const XSS_NAME = '<script>window.__xss="data"</script>';
export const XSS_EMAIL = `<img src=x onerror="window.__xss='email'">`;
export const XSS_NOTE = '</pre><svg onload="window.__xss=\'metadata\'"></svg>';

export interface InspectCase {
  readonly url: string;
  readonly port: number;
  readonly store: EventStore;
  /** Stores a runner fault for `projection` where this case's checkpoints live (as a runner would). */
  saveRunnerError(projection: string, error: StoredRunnerError | undefined): Promise<void>;
  close(): Promise<void>;
}

export type InspectKind = 'sqlite' | 'postgres' | 'nats';

export async function seedInspectStore(store: EventStore): Promise<void> {
  await store.append(
    'user-1',
    [
      { type: 'UserRegistered', data: { name: 'Ada', email: 'ada@example.com' } },
      { type: 'EmailChanged', data: { email: 'ada@lovelace.org' }, metadata: { correlationId: 'req-17' } },
      { type: 'UserRenamed', data: { name: 'Ada Lovelace' } },
    ],
    { expectedVersion: 'no-stream' },
  );
  await store.append('user-2', [{ type: 'UserRegistered', data: { name: 'Grace', email: 'grace@example.com' } }], { expectedVersion: 'no-stream' });
  await store.append('order-1', [{ type: 'OrderPlaced', data: { total: 42, lines: [{ sku: 'book', qty: 1 }] } }], { expectedVersion: 'no-stream' });
  await store.append(
    XSS_STREAM,
    [
      { type: 'UserRegistered', data: { name: XSS_NAME, email: XSS_EMAIL }, metadata: { note: XSS_NOTE } },
      { type: XSS_TYPE, data: { html: XSS_NAME } },
    ],
    { expectedVersion: 'no-stream' },
  );
}

/**
 * Seeds a fresh store (a SQLite file, a PostgreSQL schema of `db`, or a NATS JetStream stream
 * whose projection checkpoints live in a SQLite read-model file, as in the example app), writes a
 * config with the user aggregate and projection, and spawns `eventfold inspect --port 0` on it.
 */
export async function startInspect(kind: InspectKind, db?: PgTestDatabase): Promise<InspectCase> {
  const dir = mkdtempSync(join(tmpdir(), 'eventfold-inspect-'));
  mkdirSync(dir, { recursive: true });
  const app = JSON.stringify(sourceUrl('../test/fixtures/cli-app.ts'));
  let store: EventStore;
  let saveRunnerError: InspectCase['saveRunnerError'];
  const cleanups: (() => Promise<void>)[] = [];
  if (kind === 'sqlite') {
    const path = join(dir, 'events.db');
    const sqlite = new SqliteEventStore({ path });
    store = sqlite;
    saveRunnerError = (projection, error) => new SqliteCheckpointStore(sqlite.database).saveError(projection, error);
    writeFileSync(join(dir, 'eventfold.config.mjs'), `import { sqliteConfig } from ${app};\nexport default sqliteConfig(${JSON.stringify(path)});\n`);
  } else if (kind === 'nats') {
    const streams = natsStores('inspect');
    const nats = await streams.create();
    store = nats;
    const readPath = join(dir, 'read.sqlite');
    const read = new SqliteEventStore({ path: readPath });
    saveRunnerError = (projection, error) => new SqliteCheckpointStore(read.database).saveError(projection, error);
    cleanups.push(() => read.close(), () => streams.cleanup());
    const storeSetting = { nats: NATS_URL, stream: nats.options.stream, subjectPrefix: nats.options.subjectPrefix };
    writeFileSync(
      join(dir, 'eventfold.config.mjs'),
      `import { sqliteUserEmails, User } from ${app};\n` +
        `export default { store: ${JSON.stringify(storeSetting)}, checkpoints: ${JSON.stringify(readPath)}, projections: [sqliteUserEmails], aggregates: [{ streamPrefix: 'user', aggregate: User }] };\n`,
    );
  } else {
    if (db === undefined) throw new Error('startInspect(postgres) needs a test database');
    const schema = db.schema('inspect');
    store = await PostgresEventStore.create({ pool: db.pool, schema });
    const checkpoints = new PostgresCheckpointStore(db.pool, schema);
    saveRunnerError = (projection, error) => checkpoints.saveError(projection, error);
    writeFileSync(
      join(dir, 'eventfold.config.mjs'),
      `import { postgresConfig } from ${app};\nexport default postgresConfig(${JSON.stringify(DATABASE_URL)}, ${JSON.stringify(schema)});\n`,
    );
  }
  await seedInspectStore(store);
  const live = LiveCli.start(['inspect', '--port', '0'], { cwd: dir });
  let port: number;
  try {
    const out = await live.waitFor((stdout) => /Listening on http:\/\/127\.0\.0\.1:\d+\//.test(stdout), 60_000);
    port = Number(/Listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(out)![1]);
  } catch (error) {
    live.kill();
    throw error;
  }
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    store,
    saveRunnerError,
    async close() {
      live.child.kill('SIGINT');
      const exited = await Promise.race([live.exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
      if (exited === undefined) live.kill();
      await store.close();
      for (const cleanup of cleanups) await cleanup();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
