import pg from 'pg';

/** The server the tests use; CI and the README point it at 127.0.0.1:5432 (user postgres, trust auth). */
export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** Test schemas start with this prefix and carry their creation time (base 36 ms), see `uniqueSchema`. */
export const TEST_SCHEMA_PREFIX = 'eft_';

const runStamp = Date.now().toString(36);
const runTag = process.pid.toString(36);
let counter = 0;

/**
 * A schema name no other test file, run or process uses: `eft_<time>_<pid>_<tag>_<n>`. The time
 * lets the global setup drop schemas that a killed run left behind.
 */
export function uniqueSchema(tag = 't'): string {
  const cleanTag = tag.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 16);
  return `${TEST_SCHEMA_PREFIX}${runStamp}_${runTag}_${cleanTag}_${++counter}`.slice(0, 53);
}

/** A pool for tests, with the 'error' listener a long-lived pool needs (dropped idle clients). */
export function createTestPool(max = 10): pg.Pool {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max, application_name: 'eventfold-tests' });
  pool.on('error', () => {});
  return pool;
}

export async function dropSchema(pool: pg.Pool, schema: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`refusing to drop odd schema name ${schema}`);
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}

/**
 * One pool per test file plus the schemas it hands out; `cleanup()` (in afterAll) drops every one
 * of them and ends the pool, so runs cannot interfere and leave nothing behind.
 */
export interface PgTestDatabase {
  readonly pool: pg.Pool;
  /** A fresh schema name, dropped again by `cleanup()`. */
  schema(tag?: string): string;
  cleanup(): Promise<void>;
}

export function pgTestDatabase(options: { readonly max?: number } = {}): PgTestDatabase {
  const pool = createTestPool(options.max ?? 10);
  const schemas: string[] = [];
  return {
    pool,
    schema(tag) {
      const name = uniqueSchema(tag);
      schemas.push(name);
      return name;
    },
    async cleanup() {
      try {
        // Sequential: dropping many schemas at once contends on the catalog for nothing.
        for (const name of schemas.splice(0)) await dropSchema(pool, name);
      } finally {
        await pool.end();
      }
    },
  };
}
