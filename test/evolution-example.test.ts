import { readdirSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteEventStore } from '../src/sqlite/index.js';
import { createUserDetailsApp, type UserDetailsApp } from '../examples/user-details/app.js';
import type { PasswordHash } from '../examples/user-details/domain/password.js';
import { createUserDetailsServer } from '../examples/user-details/http/server.js';
import { openPostgres, openSqlite } from '../examples/user-details/infrastructure.js';
import { createTestPool, DATABASE_URL, dropSchema, uniqueSchema } from './support/postgres.js';
import { sqliteTempDir } from './fixtures/sqlite-temp.js';

/**
 * The example living with its events: idempotency keys on the HTTP API, command validation with
 * zod, upcasting of events an older build stored, and "forget me" with crypto-shredding — on a
 * real SQLite file, checked byte for byte.
 */
const temp = sqliteTempDir('eventfold-evolution-example-');
const file = join(temp.dir, 'users.sqlite');
const fastHash = async (password: string): Promise<PasswordHash> => ({
  algorithm: 'scrypt',
  salt: 'c2FsdA==',
  hash: Buffer.from(password).toString('base64'),
  N: 16384,
  r: 8,
  p: 1,
  keyLength: 32,
});
let app: UserDetailsApp;
let server: Server;
let base: string;

beforeAll(async () => {
  app = await createUserDetailsApp(openSqlite(file), { projection: 'inline', hash: fastHash });
  server = createUserDetailsServer({ role: 'all', commands: app.commands, queries: app.queries });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await app.close();
  temp.cleanup();
});

async function call(method: string, path: string, options: { body?: unknown; headers?: Record<string, string> } = {}) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { ...(options.body === undefined ? {} : { 'content-type': 'application/json' }), ...options.headers },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, json: text === '' ? undefined : (JSON.parse(text) as Record<string, any>) };
}

const dana = { userId: 'u-dana', userName: 'dana', email: 'dana.secret@example.com', password: 'dana-password-1' };

describe('the example over the years', () => {
  it('takes an Idempotency-Key: the same POST twice registers one user and answers the same', async () => {
    const headers = { 'idempotency-key': 'register-dana-1' };
    const first = await call('POST', '/users', { body: dana, headers });
    const second = await call('POST', '/users', { body: dana, headers });
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    expect(second.json).toEqual(first.json);
    expect(second.headers.get('etag')).toBe(first.headers.get('etag'));
    expect(await app.write.users.load('u-dana').then((u) => u.version)).toBe(1);
    expect((await call('GET', '/users')).json!['total']).toBe(1);
    // Without the key, the same request is a new command: the domain refuses it.
    expect((await call('POST', '/users', { body: dana })).status).toBe(409);
    // The same key for another request is refused, and nothing is written.
    const reused = await call('POST', '/users', { body: { ...dana, userId: 'u-other', userName: 'other' }, headers });
    expect(reused.status).toBe(422);
    expect(reused.json!['code']).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(await app.write.users.find('u-other')).toBeUndefined();
    // Concurrent repeats: one effect, one answer.
    const key = { 'idempotency-key': 'register-erin' };
    const erin = { userId: 'u-erin', userName: 'erin', email: 'erin@example.com', password: 'erin-password-1' };
    const answers = await Promise.all([1, 2, 3].map(() => call('POST', '/users', { body: erin, headers: key })));
    expect(answers.map((a) => a.status)).toEqual([201, 201, 201]);
    expect(new Set(answers.map((a) => JSON.stringify(a.json))).size).toBe(1);
  });

  it('validates commands with zod: malformed input is a 400 listing the issues by path', async () => {
    const response = await call('POST', '/users', { body: { ...dana, userId: 'u-long', userName: 'x'.repeat(100) } });
    expect(response.status).toBe(400);
    expect(response.json!['code']).toBe('INVALID_COMMAND');
    expect(response.json!['issues']).toEqual([expect.objectContaining({ path: 'userName' })]);
    expect(await app.write.users.find('u-long')).toBeUndefined();
  });

  it('reads events an older build stored in their current shape', async () => {
    // An older build of the example wrote straight to the file: no registeredAt, `UserEmailChanged`.
    const old = new SqliteEventStore({ path: file });
    const password = await fastHash('old-password-1');
    await old.append('user-u-old', [{ type: 'UserRegistered', data: { userName: 'oldtimer', email: 'old@example.com', password } }], {
      expectedVersion: 'no-stream',
    });
    await old.append('user-u-old', [{ type: 'UserEmailChanged', data: { email: 'older@example.com', changedAt: '2020-01-02T00:00:00.000Z' } }], {
      expectedVersion: 1,
    });
    const [stored] = await old.readStream('user-u-old').toArray();
    await old.close();
    const history = await call('GET', '/users/u-old/history');
    expect(history.json!['events'].map((e: { type: string }) => e.type)).toEqual(['UserRegistered', 'EmailChanged']);
    expect(history.json!['events'][0].data.registeredAt).toBe(stored!.recordedAt.toISOString());
    const asOf = await call('GET', '/users/u-old?version=2');
    expect(asOf.json).toMatchObject({ email: 'older@example.com', userName: 'oldtimer', version: 2 });
    // The write side loads and extends it; new events are stored in the current shape, encrypted.
    const changed = await call('POST', '/users/u-old/email', { body: { email: 'new@example.com' }, headers: { 'if-match': '"2"' } });
    expect(changed.status).toBe(200);
    expect((await app.write.users.load('u-old')).email).toBe('new@example.com');
  });

  it('forgets a user: the email is unrecoverable from the files, the read model shows the redaction, the history replays', async () => {
    const before = await call('GET', '/users/u-dana');
    expect(before.json!['email']).toBe('dana.secret@example.com');
    const filesHold = (text: string) =>
      readdirSync(temp.dir)
        .filter((f) => f.startsWith('users.sqlite'))
        .some((name) => readFileSync(join(temp.dir, name)).includes(Buffer.from(text)));
    // Before: the read model holds the email (so the check below can fail); the events hold it only encrypted.
    expect(filesHold('dana.secret@example.com')).toBe(true);
    const raw = new SqliteEventStore({ path: file });
    expect(JSON.stringify(await raw.readStream('user-u-dana').toArray())).not.toContain('dana.secret');
    await raw.close();
    const forget = await call('POST', '/users/u-dana/forget', { headers: { 'idempotency-key': 'forget-dana' } });
    expect(forget.status).toBe(200);
    expect((await call('POST', '/users/u-dana/forget', { headers: { 'idempotency-key': 'forget-dana' } })).json).toEqual(forget.json);

    const view = await call('GET', '/users/u-dana');
    expect(view.json).toMatchObject({ email: '[forgotten]', status: 'deactivated', version: 2 });
    const history = await call('GET', '/users/u-dana/history');
    expect(history.json!['events'].map((e: { type: string; version: number }) => [e.type, e.version])).toEqual([
      ['UserRegistered', 1],
      ['UserForgotten', 2],
    ]);
    expect(history.json!['events'][0].data.email).toBe('[forgotten]');
    expect((await call('GET', '/users/u-dana?version=1')).json!['email']).toBe('[forgotten]');
    const user = await app.write.users.load('u-dana');
    expect([user.email, user.status, user.version]).toEqual(['[forgotten]', 'deactivated', 2]);
    // No new personal data for a forgotten user.
    expect((await call('POST', '/users/u-dana/email', { body: { email: 'again@example.com' }, headers: { 'if-match': '"2"' } })).status).toBe(409);

    // A rebuilt read model shows the redaction too (an async runner replaying the whole log).
    const rebuilt = await createUserDetailsApp(openSqlite(file), { projection: 'async', hash: fastHash });
    try {
      await rebuilt.readSide.rebuild();
      expect(await rebuilt.queries.execute({ type: 'GetUser', params: { userId: 'u-dana' } })).toMatchObject({ email: '[forgotten]' });
      expect(await rebuilt.queries.execute({ type: 'GetUser', params: { userId: 'u-erin' } })).toMatchObject({ email: 'erin@example.com' });
    } finally {
      await rebuilt.close();
    }

    // Byte for byte: no file of the database holds the email any more, in any encoding we stored.
    const needles = ['dana.secret@example.com', 'dana.secret'].map((s) => Buffer.from(s));
    const files = readdirSync(temp.dir).filter((f) => f.startsWith('users.sqlite'));
    expect(files).toContain('users.sqlite');
    for (const name of files) {
      const content = readFileSync(join(temp.dir, name));
      for (const needle of needles) expect(content.includes(needle), `${name} holds the email`).toBe(false);
    }
    // While other users' emails are encrypted at rest too.
    const all = Buffer.concat(files.map((name) => readFileSync(join(temp.dir, name))));
    expect(all.includes(Buffer.from('erin@example.com'))).toBe(true); // in the read model, which shows it
  });
});

describe('the example on PostgreSQL', () => {
  const pool = createTestPool(4);
  const schema = uniqueSchema('evoex');
  afterAll(async () => {
    await dropSchema(pool, schema);
    await pool.end();
  });

  it('forgets a user with inline and rebuilt read models; no email left in the events or keys', async () => {
    const pgApp = await createUserDetailsApp(await openPostgres(DATABASE_URL, schema), { projection: 'inline', hash: fastHash });
    try {
      const key = { 'idempotency-key': 'pg-register-fay' };
      const fay = { userId: 'u-fay', userName: 'fay', email: 'fay.secret@example.com', password: 'fay-password-1' };
      const first = await pgApp.commands.dispatch({ type: 'RegisterUser', commandId: key['idempotency-key'], data: fay });
      expect(await pgApp.commands.dispatch({ type: 'RegisterUser', commandId: key['idempotency-key'], data: fay })).toEqual(first);
      expect(await pgApp.queries.execute({ type: 'GetUser', params: { userId: 'u-fay' } })).toMatchObject({ email: 'fay.secret@example.com' });
      const events = await pool.query(`SELECT data::text AS data FROM "${schema}".events`);
      expect(events.rows.map((r: { data: string }) => r.data).join('\n')).not.toContain('fay.secret');

      await pgApp.commands.dispatch({ type: 'ForgetUser', data: { userId: 'u-fay' } });
      expect(await pgApp.queries.execute({ type: 'GetUser', params: { userId: 'u-fay' } })).toMatchObject({ email: '[forgotten]', status: 'deactivated' });
      const history = await pgApp.queries.execute({ type: 'GetUserHistory', params: { userId: 'u-fay' } });
      expect(history?.map((e) => [e.type, e.data['email']])).toEqual([
        ['UserRegistered', '[forgotten]'],
        ['UserForgotten', undefined],
      ]);
      const keyRow = await pool.query(`SELECT key, forgotten_at FROM "${schema}".subject_keys WHERE subject_id = 'u-fay'`);
      expect(keyRow.rows[0]).toMatchObject({ key: null });
      expect(keyRow.rows[0].forgotten_at).toBeInstanceOf(Date);
    } finally {
      await pgApp.close();
    }
    const rebuilt = await createUserDetailsApp(await openPostgres(DATABASE_URL, schema), { projection: 'async', hash: fastHash });
    try {
      await rebuilt.readSide.rebuild();
      expect(await rebuilt.queries.execute({ type: 'GetUser', params: { userId: 'u-fay' } })).toMatchObject({ email: '[forgotten]' });
      expect((await rebuilt.write.users.load('u-fay')).version).toBe(2);
    } finally {
      await rebuilt.close();
    }
  });
});

describe('the example on SQLite with the async read side', () => {
  it('forget-me: once the read model shows the redaction, no file of the database holds the email, while the app still runs', async () => {
    const path = join(temp.dir, 'async-users.sqlite');
    const asyncApp = await createUserDetailsApp(openSqlite(path), { projection: 'async', hash: fastHash });
    const filesHolding = (needles: readonly Buffer[]) =>
      readdirSync(temp.dir)
        .filter((name) => name.startsWith('async-users.sqlite'))
        .filter((name) => needles.some((needle) => readFileSync(join(temp.dir, name)).includes(needle)));
    try {
      const gus = { userId: 'u-gus', userName: 'gus', email: 'gus.secret@example.com', password: 'gus-password-1' };
      await asyncApp.commands.dispatch({ type: 'RegisterUser', data: gus });
      await asyncApp.readSide.caughtUp();
      expect(await asyncApp.queries.execute({ type: 'GetUser', params: { userId: 'u-gus' } })).toMatchObject({ email: gus.email });
      const needles = [Buffer.from(gus.email), Buffer.from('gus.secret')];
      // The read model holds the email in clear (so the scan below can fail).
      expect(filesHolding(needles)).not.toEqual([]);

      await asyncApp.commands.dispatch({ type: 'ForgetUser', data: { userId: 'u-gus' } });
      await asyncApp.readSide.caughtUp();
      expect(await asyncApp.queries.execute({ type: 'GetUser', params: { userId: 'u-gus' } })).toMatchObject({ email: '[forgotten]' });
      expect(readdirSync(temp.dir)).toContain('async-users.sqlite-wal');
      expect(filesHolding(needles)).toEqual([]);
    } finally {
      await asyncApp.close();
    }
  });
});
