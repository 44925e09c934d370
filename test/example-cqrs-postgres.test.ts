import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchJson as json, readUntil, startWriteAndReadServices, stopServices, type RunningService } from './example-support.js';
import { createTestPool, DATABASE_URL, dropSchema, uniqueSchema } from './support/postgres.js';

/**
 * The CQRS split of the example as separate processes on one PostgreSQL database: a write service
 * (commands only) and a read service (queries only, its projection tailing the global log).
 */
const schema = uniqueSchema('cqrs');
const pool = createTestPool(2);
let services: { write: RunningService; read: RunningService } | undefined;
let writeUrl: string;
let readUrl: string;

beforeAll(async () => {
  services = await startWriteAndReadServices({ DATABASE_URL, EVENTFOLD_PG_SCHEMA: schema });
  writeUrl = services.write.url;
  readUrl = services.read.url;
}, 60_000);

afterAll(async () => {
  await stopServices([services?.write, services?.read]);
  await dropSchema(pool, schema);
  await pool.end();
});

async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  return (await readUntil(read, done)).value;
}

describe('user-details as separate write and read services on PostgreSQL', () => {
  it('commands go to the write service; the read service serves queries from its projection', async () => {
    const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
      json(`${writeUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

    const created = await post('/users', { userId: 'pg-1', userName: 'grace', email: 'grace@example.com', password: 'grace-password' });
    expect(created.status).toBe(201);

    // Each service serves only its half.
    const queryOnWrite = await fetch(`${writeUrl}/users/pg-1`);
    expect(queryOnWrite.status).toBe(405);
    expect(queryOnWrite.headers.get('allow')).toBe('DELETE');
    const commandOnRead = await fetch(`${readUrl}/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(commandOnRead.status).toBe(405);
    expect(commandOnRead.headers.get('allow')).toBe('GET');

    const seen = await eventually(() => json(`${readUrl}/users/pg-1`), (r) => r.status === 200);
    expect(seen.body).toMatchObject({ id: 'pg-1', userName: 'grace', version: 1 });

    const [bob, alice] = await Promise.all([
      post('/users/pg-1/password', { password: 'bob-password-1' }, { 'if-match': '1' }),
      post('/users/pg-1/password', { password: 'alice-password-1' }, { 'if-match': '1' }),
    ]);
    expect([bob.status, alice.status].sort()).toEqual([200, 412]);
    expect([bob, alice].find((r) => r.status === 412)!.body).toMatchObject({ currentVersion: 2 });

    const names = await Promise.all(
      [2, 3, 4].map((i) => post('/users', { userId: `pg-${i}`, userName: 'heidi', email: `h${i}@example.com`, password: 'heidi-password' })),
    );
    expect(names.filter((r) => r.status === 201)).toHaveLength(1);
    expect(names.filter((r) => r.status === 409)).toHaveLength(2);

    const listed = await eventually(
      () => json(`${readUrl}/users?limit=10`),
      (r) => r.body['total'] === 2 && r.body['users'].some((u: { id: string; version: number }) => u.id === 'pg-1' && u.version === 2),
    );
    expect(listed.body['total']).toBe(2);
    const history = await json(`${readUrl}/users/pg-1/history`);
    expect(history.body['events'].map((e: { type: string }) => e.type)).toEqual(['UserRegistered', 'PasswordChanged']);
    expect((await json(`${readUrl}/users/pg-1?version=1`)).body).toMatchObject({ version: 1 });
  });
});
