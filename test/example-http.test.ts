import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUserDetailsApp, type UserDetailsApp } from '../examples/user-details/app.js';
import { createUserDetailsServer } from '../examples/user-details/http/server.js';
import { openSqlite } from '../examples/user-details/infrastructure.js';
import type { Server } from 'node:http';

/** End-to-end: real HTTP requests against the example's API on a real SQLite file. */
let dir: string;
let app: UserDetailsApp;
let server: Server;
let base: string;
const logLines: string[] = [];
const secrets = ['first-secret-pw', 'second-secret-pw', 'bob-secret-pw', 'alice-secret-pw'];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'eventfold-http-'));
  app = await createUserDetailsApp(openSqlite(join(dir, 'users.sqlite')), { projection: 'inline' });
  server = createUserDetailsServer({ role: 'all', commands: app.commands, queries: app.queries, log: (l) => logLines.push(l) });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await app.close();
  rmSync(dir, { recursive: true, force: true });
});

const bodies: string[] = [];

async function call(method: string, path: string, options: { body?: unknown; raw?: string; headers?: Record<string, string> } = {}) {
  const hasBody = options.body !== undefined || options.raw !== undefined;
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { ...(hasBody ? { 'content-type': 'application/json' } : {}), ...options.headers },
    ...(hasBody ? { body: options.raw ?? JSON.stringify(options.body) } : {}),
  });
  const text = await response.text();
  bodies.push(text);
  return { status: response.status, headers: response.headers, json: text === '' ? undefined : (JSON.parse(text) as Record<string, any>) };
}

function expectProblem(result: Awaited<ReturnType<typeof call>>, status: number) {
  expect(result.status).toBe(status);
  expect(result.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(result.json?.['status']).toBe(status);
  expect(typeof result.json?.['detail']).toBe('string');
}

describe('user-details HTTP API', () => {
  it('registers a user, shows it, and changes the password with If-Match', async () => {
    const created = await call('POST', '/users', { body: { userId: 'u-1', userName: 'Carol', email: 'carol@example.com', password: secrets[0] } });
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe('/users/u-1');
    expect(created.headers.get('etag')).toBe('"1"');
    expect(created.json).toEqual({ userId: 'u-1', version: 1 });

    const shown = await call('GET', '/users/u-1');
    expect(shown.status).toBe(200);
    expect(shown.json).toMatchObject({ id: 'u-1', userName: 'carol', email: 'carol@example.com', status: 'active', version: 1 });
    expect(Object.keys(shown.json!)).not.toContain('password');

    const changed = await call('POST', '/users/u-1/password', { body: { password: secrets[1] }, headers: { 'if-match': '"1"' } });
    expect(changed.status).toBe(200);
    expect(changed.json).toEqual({ userId: 'u-1', version: 2 });
    expect((await call('GET', '/users/u-1')).headers.get('etag')).toBe('"2"');
  });

  it('Bob and Alice update from the same version: one 200, the other 412 with the current version', async () => {
    const results = await Promise.all([
      call('POST', '/users/u-1/password', { body: { password: secrets[2] }, headers: { 'if-match': '2' } }),
      call('POST', '/users/u-1/password', { body: { password: secrets[3] }, headers: { 'if-match': '2' } }),
    ]);
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 412]);
    const lost = results.find((r) => r.status === 412)!;
    expectProblem(lost, 412);
    expect(lost.json).toMatchObject({ code: 'VERSION_MISMATCH', currentVersion: 3 });
    expect(lost.headers.get('etag')).toBe('"3"');
  });

  it('requires If-Match on updates (428) and rejects a malformed one (400)', async () => {
    expectProblem(await call('POST', '/users/u-1/password', { body: { password: 'whatever-123' } }), 428);
    expectProblem(await call('POST', '/users/u-1/email', { body: { email: 'x@example.com' }, headers: { 'if-match': 'yesterday' } }), 400);
  });

  it('shows the history (passwords redacted) and the state as of a version (time travel)', async () => {
    await call('POST', '/users/u-1/email', { body: { email: 'carol@new.example.com' }, headers: { 'if-match': '3' } });
    const history = await call('GET', '/users/u-1/history');
    expect(history.status).toBe(200);
    const events = history.json!['events'] as { version: number; type: string; data: Record<string, unknown> }[];
    expect(events.map((e) => [e.version, e.type])).toEqual([
      [1, 'UserRegistered'],
      [2, 'PasswordChanged'],
      [3, 'PasswordChanged'],
      [4, 'EmailChanged'],
    ]);
    expect(events[1]!.data['password']).toBe('[redacted]');

    const asOf1 = await call('GET', '/users/u-1?version=1');
    expect(asOf1.status).toBe(200);
    expect(asOf1.json).toMatchObject({ email: 'carol@example.com', version: 1 });
    const now = await call('GET', '/users/u-1');
    expect(now.json).toMatchObject({ email: 'carol@new.example.com', version: 4 });
    expectProblem(await call('GET', '/users/u-1?version=99'), 404);
    expectProblem(await call('GET', '/users/u-1?version=abc'), 400);
  });

  it('refuses a duplicate user name (409), also case-insensitively', async () => {
    const dup = await call('POST', '/users', { body: { userId: 'u-2', userName: 'CAROL', email: 'c2@example.com', password: 'another-pw-123' } });
    expectProblem(dup, 409);
    expect(dup.json?.['code']).toBe('USER_NAME_TAKEN');
    expectProblem(await call('GET', '/users/u-2'), 404);
  });

  it('two concurrent registrations of one name: exactly one succeeds', async () => {
    const attempts = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        call('POST', '/users', { body: { userId: `race-${i}`, userName: 'dave', email: `d${i}@example.com`, password: 'race-password-1' } }),
      ),
    );
    expect(attempts.filter((a) => a.status === 201)).toHaveLength(1);
    for (const a of attempts.filter((x) => x.status !== 201)) {
      expectProblem(a, 409);
      expect(a.json?.['code']).toBe('USER_NAME_TAKEN');
    }
    const byName = await call('GET', '/users?userName=dave');
    expect(byName.status).toBe(200);
    expect(attempts[attempts.findIndex((a) => a.status === 201)]!.json!['userId']).toBe(byName.json!['id']);
  });

  it('DELETE deactivates (an event, not a deletion), blocks password changes and frees the name', async () => {
    await call('POST', '/users', { body: { userId: 'u-3', userName: 'erin', email: 'erin@example.com', password: 'erin-password' } });
    const deleted = await call('DELETE', '/users/u-3', { headers: { 'if-match': '1' } });
    expect(deleted.status).toBe(200);
    expect(deleted.json).toEqual({ userId: 'u-3', version: 2 });
    expect((await call('GET', '/users/u-3')).json).toMatchObject({ status: 'deactivated', version: 2 });
    const blocked = await call('POST', '/users/u-3/password', { body: { password: 'new-password-1' }, headers: { 'if-match': '2' } });
    expectProblem(blocked, 409);
    expect(blocked.json?.['code']).toBe('USER_DEACTIVATED');
    const again = await call('POST', '/users', { body: { userId: 'u-4', userName: 'erin', email: 'erin2@example.com', password: 'erin-password' } });
    expect(again.status).toBe(201);
    expect((await call('GET', '/users/u-3/history')).json!['events']).toHaveLength(2);
  });

  it('lists users in pages', async () => {
    const first = await call('GET', '/users?limit=2&offset=0');
    expect(first.status).toBe(200);
    expect(first.json!['users']).toHaveLength(2);
    const total = first.json!['total'] as number;
    expect(total).toBeGreaterThanOrEqual(4);
    const all = await call('GET', `/users?limit=100`);
    expect((all.json!['users'] as unknown[]).length).toBe(total);
    const second = await call('GET', '/users?limit=2&offset=2');
    expect(second.json!['users'][0].id).toBe(all.json!['users'][2].id);
    expectProblem(await call('GET', '/users?limit=0'), 400);
    expectProblem(await call('GET', '/users?limit=1000'), 400);
  });

  it('answers bad input with 4xx problem+json, never 500', async () => {
    expectProblem(await call('POST', '/users', { raw: '{"userName": ' }), 400);
    expectProblem(await call('POST', '/users', { raw: '[1,2]' }), 400);
    expectProblem(await call('POST', '/users', { body: { userName: 'frank', email: 'frank@example.com' } }), 400);
    expectProblem(await call('POST', '/users', { body: { userName: 'frank', email: 'nope', password: 'frank-password' } }), 400);
    expectProblem(await call('POST', '/users', { body: { userName: 'frank', email: 'f@example.com', password: 'short' } }), 400);
    expectProblem(await call('POST', '/users', { body: { userName: 'x', email: 'f@example.com', password: 'long-enough' } }), 400);
    expectProblem(await call('POST', '/users', { body: { userId: 'bad id!', userName: 'frank', email: 'f@example.com', password: 'long-enough' } }), 400);
    expectProblem(await call('POST', '/users', { body: { userName: 42, email: 'f@example.com', password: 'long-enough' } }), 400);
    expectProblem(await call('POST', '/users', { raw: JSON.stringify({ userName: 'a'.repeat(20_000) }) }), 413);
    const wrongType = await fetch(`${base}/users`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hi' });
    expect(wrongType.status).toBe(415);
    expectProblem(await call('GET', '/nowhere'), 404);
    const notAllowed = await call('PUT', '/users/u-1', { body: {} });
    expectProblem(notAllowed, 405);
    expect(notAllowed.headers.get('allow')).toContain('GET');
    expectProblem(await call('GET', '/users/%E0%A4%A'), 400);
    expectProblem(await call('POST', '/users/nobody/password', { body: { password: 'long-enough' }, headers: { 'if-match': '1' } }), 404);
    expect(logLines.some((l) => / 500 /.test(l))).toBe(false);
  });

  it('never echoes or logs a password', () => {
    const everything = bodies.join('\n') + logLines.join('\n');
    for (const secret of secrets) expect(everything).not.toContain(secret);
    expect(logLines.length).toBeGreaterThan(10);
  });
});
