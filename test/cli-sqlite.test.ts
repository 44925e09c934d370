import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AnyEvent, ProjectionRunner } from '../src/index.js';
import { SqliteEventStore, SqliteProjectionRunner } from '../src/sqlite/index.js';
import { sqliteTempDir } from './fixtures/sqlite-temp.js';
import { sqliteUserEmails } from './fixtures/cli-app.js';
import { runCli, sourceUrl } from './support/cli-process.js';
import { describeCliSuite, writeConfig, type CliStoreCase } from './support/cli-suite.js';

const temp = sqliteTempDir('eventfold-cli-');
const stores: SqliteEventStore[] = [];
let counter = 0;

describeCliSuite({
  kind: 'sqlite',
  async create(tag): Promise<CliStoreCase> {
    const dir = join(temp.dir, `${tag}-${++counter}`);
    mkdirSync(dir);
    const path = join(dir, 'events.db');
    const store = new SqliteEventStore({ path });
    stores.push(store);
    writeConfig(
      dir,
      `import { sqliteConfig } from ${JSON.stringify(sourceUrl('../test/fixtures/cli-app.ts'))};\nexport default sqliteConfig(${JSON.stringify(path)});\n`,
    );
    return {
      args: ['--db', path],
      store,
      dir,
      async startRunner(settings = {}) {
        const runner = new SqliteProjectionRunner(store, sqliteUserEmails, { pollIntervalMs: 50, lockTtlMs: 60_000, ...settings });
        await runner.start();
        return runner as unknown as ProjectionRunner<AnyEvent, unknown>;
      },
      async readModel() {
        const hasTable = store.database.prepare(`SELECT 1 FROM sqlite_schema WHERE name = 'cli_user_emails'`).get() !== undefined;
        if (!hasTable) return {};
        const rows = store.database.prepare('SELECT id, email FROM cli_user_emails ORDER BY id').all() as { id: string; email: string }[];
        return Object.fromEntries(rows.map((row) => [row.id, row.email]));
      },
    };
  },
  async cleanup() {
    for (const store of stores) await store.close();
    temp.cleanup();
  },
});

describe('eventfold CLI: SQLite specifics', () => {
  it('refuses a SQLite file that does not exist (and does not create it), except for migrate', async () => {
    const path = join(temp.dir, 'missing.db');
    const result = await runCli(['streams', '--db', path]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^eventfold: error: There is no SQLite database at .*missing\.db.*eventfold migrate/);
    expect(existsSync(path)).toBe(false);
    const migrated = await runCli(['migrate', '--db', `sqlite:${path}`]);
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(existsSync(path)).toBe(true);
  });
});
