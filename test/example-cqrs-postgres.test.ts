import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPool, DATABASE_URL, dropSchema, uniqueSchema } from './support/postgres.js';

/**
 * The CQRS split of the example as separate processes on one PostgreSQL database: a write service
 * (commands only) and a read service (queries only, its projection tailing the global log).
 */
const schema = uniqueSchema('cqrs');
const pool = createTestPool(2);
const children: ChildProcess[] = [];

function startService(role: 'write' | 'read'): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/user-details/serve.ts', '--role', role, '--port', '0'], {
    env: { ...process.env, DATABASE_URL, EVENTFOLD_PG_SCHEMA: schema },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`${role} service did not start:\n${output}`)), 30_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const match = /on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match !== null) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${role} service exited with ${code}:\n${output}`));
    });
  });
}

let writeUrl: string;
let readUrl: string;

beforeAll(async () => {
  // The write service migrates the schema; start it first so the read service finds the tables.
  writeUrl = await startService('write');
  readUrl = await startService('read');
}, 60_000);

afterAll(async () => {
  for (const child of children) child.kill('SIGTERM');
  await Promise.all(children.map((c) => new Promise((resolve) => (c.exitCode !== null ? resolve(null) : c.on('exit', resolve)))));
  await dropSchema(pool, schema);
  await pool.end();
});

async function json(url: string, init: RequestInit = {}) {
  const response = await fetch(url, init);
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
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
