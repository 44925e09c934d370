import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteEventStore } from '../src/sqlite/index.js';
import { PostgresEventStore } from '../src/postgres/index.js';
import { sqliteUserReadModel } from '../examples/user-details/read-model/sqlite-users.js';
import { postgresUserReadModel } from '../examples/user-details/read-model/postgres-users.js';
import { expectConsistent, killService, startService, type RunningService } from './example-support.js';
import { DATABASE_URL, pgTestDatabase } from './support/postgres.js';

/**
 * SIGTERM stops the example cleanly: requests in flight are answered, the HTTP server and the
 * store are closed, the process says so and exits 0, and what it stored is consistent.
 */
const services: RunningService[] = [];
const pg = pgTestDatabase({ max: 2 });

afterAll(async () => {
  for (const service of services) await killService(service);
  await pg.cleanup();
});

async function post(url: string, body: unknown, ifMatch?: string): Promise<number> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(ifMatch === undefined ? {} : { 'if-match': ifMatch }) },
    body: JSON.stringify(body),
  });
  await response.text();
  return response.status;
}

/** Writes some users, then sends SIGTERM while password changes are in flight. */
async function writeThenTerminate(service: RunningService): Promise<number | string> {
  for (const name of ['judy', 'kim', 'leo']) {
    expect(await post(`${service.url}/users`, { userId: name, userName: name, email: `${name}@example.com`, password: `${name}-password` })).toBe(201);
  }
  const inFlight = ['judy', 'kim', 'leo', 'judy'].map((name, i) =>
    post(`${service.url}/users/${name}/password`, { password: `changed-password-${i}` }, '"1"').catch(() => 'no answer' as const),
  );
  await new Promise((resolve) => setTimeout(resolve, 20));
  service.child.kill('SIGTERM');
  for (const outcome of await Promise.all(inFlight)) {
    // Answered in full (or refused before it was accepted); never a 500.
    if (outcome !== 'no answer') expect([200, 412, 503]).toContain(outcome);
  }
  return service.exited;
}

function expectCleanStop(service: RunningService, code: number | string): void {
  expect(code, service.output()).toBe(0);
  expect(service.output()).toMatch(/SIGTERM received, stopping/);
  expect(service.output()).toMatch(/HTTP server closed/);
  expect(service.output()).toMatch(/store closed .*stopped cleanly/);
}

describe('stopping the example service', () => {
  it('on SQLite: answers what is in flight, closes server and store, exits 0; the file is consistent', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'eventfold-stop-'));
    try {
      const service = await startService([], { EVENTFOLD_DATA_DIR: dir });
      services.push(service);
      const code = await writeThenTerminate(service);
      expectCleanStop(service, code);

      const path = join(dir, 'user-details.sqlite');
      // A clean close checkpoints the write-ahead log into the main file and removes it.
      expect(existsSync(`${path}-wal`)).toBe(false);
      const store = new SqliteEventStore({ path });
      try {
        expect(store.database.pragma('integrity_check', { simple: true })).toBe('ok');
        expect(await expectConsistent(store, sqliteUserReadModel(store.database))).toBeGreaterThanOrEqual(6);
      } finally {
        await store.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('on PostgreSQL: the same, and no connection is left open', async () => {
    const schema = pg.schema('stop');
    const applicationName = `eft_stop_${process.pid}`;
    const service = await startService([], {
      DATABASE_URL: `${DATABASE_URL}?application_name=${applicationName}`,
      EVENTFOLD_PG_SCHEMA: schema,
    });
    services.push(service);
    const code = await writeThenTerminate(service);
    expectCleanStop(service, code);

    const open = await pg.pool.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [applicationName]);
    expect(open.rows[0].n).toBe(0);
    const store = new PostgresEventStore({ pool: pg.pool, schema });
    expect(await expectConsistent(store, await postgresUserReadModel(pg.pool, schema))).toBeGreaterThanOrEqual(6);
  });
});
