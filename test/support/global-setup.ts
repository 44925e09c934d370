import pg from 'pg';
import { DATABASE_URL, TEST_SCHEMA_PREFIX } from './postgres.js';

const STALE_AFTER_MS = 6 * 60 * 60 * 1000;

/**
 * Runs once before the suite. PostgreSQL is required: when it cannot be reached the run fails
 * here, loudly, instead of skipping the tests that need it.
 */
export default async function setup(): Promise<void> {
  const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (error) {
    await client.end().catch(() => {});
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
