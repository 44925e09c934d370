import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { AnyEvent, ProjectionRunner } from '../src/index.js';
import { PostgresEventStore, PostgresProjectionRunner } from '../src/postgres/index.js';
import { postgresUserEmails } from './fixtures/cli-app.js';
import { sqliteTempDir } from './fixtures/sqlite-temp.js';
import { runCli, sourceUrl } from './support/cli-process.js';
import { describeCliSuite, writeConfig, type CliStoreCase } from './support/cli-suite.js';
import { DATABASE_URL, pgTestDatabase } from './support/postgres.js';

const db = pgTestDatabase({ max: 10 });
const temp = sqliteTempDir('eventfold-cli-pg-');
const stores: PostgresEventStore[] = [];
let counter = 0;

describeCliSuite({
  kind: 'postgres',
  async create(tag): Promise<CliStoreCase> {
    const schema = db.schema(`cli_${tag}`);
    const dir = join(temp.dir, `${tag}-${++counter}`);
    mkdirSync(dir);
    const store = await PostgresEventStore.create({ pool: db.pool, schema });
    stores.push(store);
    writeConfig(
      dir,
      `import { postgresConfig } from ${JSON.stringify(sourceUrl('../test/fixtures/cli-app.ts'))};\nexport default postgresConfig(${JSON.stringify(DATABASE_URL)}, ${JSON.stringify(schema)});\n`,
    );
    return {
      args: ['--db', DATABASE_URL, '--schema', schema],
      store,
      dir,
      async startRunner(settings = {}) {
        const runner = new PostgresProjectionRunner(store, postgresUserEmails(schema), { pollIntervalMs: 50, ...settings });
        await runner.start();
        return runner as unknown as ProjectionRunner<AnyEvent, unknown>;
      },
      async readModel() {
        const exists = await db.pool.query<{ found: boolean }>('SELECT to_regclass($1) IS NOT NULL AS found', [`"${schema}".cli_user_emails`]);
        if (exists.rows[0]?.found !== true) return {};
        const { rows } = await db.pool.query<{ id: string; email: string }>(`SELECT id, email FROM "${schema}".cli_user_emails ORDER BY id`);
        return Object.fromEntries(rows.map((row) => [row.id, row.email]));
      },
    };
  },
  async cleanup() {
    for (const store of stores) await store.close();
    await db.cleanup();
    temp.cleanup();
  },
});

describe('eventfold CLI: PostgreSQL specifics', () => {
  it('uses DATABASE_URL and EVENTFOLD_PG_SCHEMA when neither --db nor a config file names the store', async () => {
    const schema = db.schema('cli_env');
    const store = await PostgresEventStore.create({ pool: db.pool, schema });
    stores.push(store);
    await store.append('user-7', [{ type: 'UserRegistered', data: { name: 'Env', email: 'e@e' } }], { expectedVersion: 'no-stream' });
    const result = await runCli(['streams', '--json'], { env: { DATABASE_URL, EVENTFOLD_PG_SCHEMA: schema } });
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ streamId: 'user-7', version: 1 });
  });

  it('reports an unreachable server in one line with exit code 1, without the password', async () => {
    const result = await runCli(['streams', '--db', 'postgres://someone:s3cret@127.0.0.1:1/nowhere']);
    expect(result.code).toBe(1);
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/^eventfold: error: /);
    expect(result.stderr).not.toContain('s3cret');
  });

  it('creates the schema with migrate, and names the missing schema otherwise', async () => {
    const schema = db.schema('cli_migrate');
    const before = await runCli(['streams', '--db', DATABASE_URL, '--schema', schema]);
    expect(before.code).toBe(1);
    expect(before.stderr.trimEnd().split('\n')).toHaveLength(1);
    const migrated = await runCli(['migrate', '--db', DATABASE_URL, '--schema', schema]);
    expect(migrated.code, migrated.stderr).toBe(0);
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    try {
      const { rows } = await client.query<{ found: boolean }>('SELECT to_regclass($1) IS NOT NULL AS found', [`"${schema}".projection_checkpoints`]);
      expect(rows[0]?.found).toBe(true);
    } finally {
      await client.end();
    }
  });
});
