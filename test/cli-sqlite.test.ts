import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AnyEvent, ProjectionRunner } from '../src/index.js';
import { SqliteEventStore, SqliteProjectionRunner } from '../src/sqlite/index.js';
import { sqliteTempDir } from './fixtures/sqlite-temp.js';
import { sqliteUserEmails } from './fixtures/cli-app.js';
import { runCli, sourceUrl } from './support/cli-process.js';
import { describeCliSuite, expectTerminalSafe, writeConfig, type CliStoreCase } from './support/cli-suite.js';

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
  it('escapes a stream id with control characters written by another tool (stores refuse such ids)', async () => {
    const path = join(temp.dir, 'raw.db');
    const store = new SqliteEventStore({ path });
    const evil = 'user-\u001b]8;;http://evil.example\u0007click\u001b]8;;\u0007\u202e\u009b2J';
    store.database
      .prepare(
        `INSERT INTO eventfold_events (position, stream_id, version, type, data, metadata, event_id, recorded_at)
         VALUES (1, ?, 1, 'Raw\u001b[2J', '{"x":"\\u001b[31m"}', NULL, '00000000-0000-4000-8000-000000000001', 0)`,
      )
      .run(evil);
    await store.close();
    for (const env of [{}, { FORCE_COLOR: '1' }]) {
      const streams = await runCli(['streams', '--db', path], { env });
      expect(streams.code, streams.stderr).toBe(0);
      expectTerminalSafe(streams.stdout);
      expect(streams.stdout).toContain('user-\\u001b]8;;http://evil.example\\u0007click');
      const tail = await runCli(['tail', '--from', '0', '--max', '1', '--db', path], { env });
      expect(tail.code, tail.stderr).toBe(0);
      expectTerminalSafe(tail.stdout);
      // Reading it by id is refused (the id is invalid), and the error line is escaped too.
      const read = await runCli(['read', evil, '--db', path], { env });
      expect(read.code).toBe(2);
      expectTerminalSafe(read.stderr);
      expect(read.stderr.trimEnd().split('\n')).toHaveLength(1);
    }
  });

  it('reads a stream an earlier version stored under a bidi or zero-width id, and prints the id escaped, in order', async () => {
    const path = join(temp.dir, 'legacy-ids.db');
    const store = new SqliteEventStore({ path });
    const bidi = 'notes-\u202egnp.exe';
    const zeroWidth = 'notes-a\u200bb';
    const insert = store.database.prepare(
      `INSERT INTO eventfold_events (position, stream_id, version, type, data, metadata, event_id, recorded_at)
       VALUES (?, ?, 1, 'Noted', '{"n":1}', NULL, ?, 0)`,
    );
    insert.run(1, bidi, '00000000-0000-4000-8000-000000000011');
    insert.run(2, zeroWidth, '00000000-0000-4000-8000-000000000012');
    await store.close();
    const plain = (text: string) => text.replace(/\u001b\[\d+m/g, '');
    for (const env of [{}, { FORCE_COLOR: '1' }]) {
      const read = await runCli(['read', bidi, '--db', path], { env });
      expect(read.code, read.stderr).toBe(0);
      expectTerminalSafe(read.stdout);
      expect(plain(read.stdout)).toContain('"n": 1');
      const readJson = await runCli(['read', zeroWidth, '--json', '--db', path], { env });
      expect(readJson.code, readJson.stderr).toBe(0);
      expect((JSON.parse(readJson.stdout) as { streamId: string }).streamId).toBe(zeroWidth);

      const streams = await runCli(['streams', '--db', path], { env });
      expect(streams.code, streams.stderr).toBe(0);
      expectTerminalSafe(streams.stdout);
      // The override is shown as an escape, so the text after it reads left to right as stored.
      expect(plain(streams.stdout)).toContain('notes-\\u202egnp.exe');
      expect(plain(streams.stdout)).toContain('notes-a\\u200bb');
      const tail = await runCli(['tail', '--from', '0', '--max', '2', '--db', path], { env });
      expect(tail.code, tail.stderr).toBe(0);
      expectTerminalSafe(tail.stdout);
      expect(plain(tail.stdout)).toContain('notes-\\u202egnp.exe@1');
      expect(plain(tail.stdout)).toContain('notes-a\\u200bb@1');
    }
  });

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
