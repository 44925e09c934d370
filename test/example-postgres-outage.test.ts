import type { Server } from 'node:http';
import { createServer as createTcpServer, connect, type AddressInfo, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import type { Logger } from '../src/index.js';
import { PostgresEventStore } from '../src/postgres/index.js';
import { createUserDetailsApp, type UserDetailsApp } from '../examples/user-details/app.js';
import { createUserDetailsServer } from '../examples/user-details/http/server.js';
import { openPostgres } from '../examples/user-details/infrastructure.js';
import { postgresUserReadModel } from '../examples/user-details/read-model/postgres-users.js';
import { expectConsistent, killService, startService, waitFor, type RunningService } from './example-support.js';
import { DATABASE_URL, pgTestDatabase } from './support/postgres.js';

/**
 * The example against a real PostgreSQL that goes away: terminated idle connections, queries
 * terminated mid-flight, a server that refuses connections. The process stays up, an unavailable
 * store is a 503 with Retry-After on reads and writes (never a 500), and it recovers.
 */
const pg = pgTestDatabase({ max: 3 });
const cleanups: (() => Promise<void>)[] = [];

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  await pg.cleanup();
});

const target = new URL(DATABASE_URL);
const silent: Logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };
const withAppName = (url: string, name: string): string => `${url}${url.includes('?') ? '&' : '?'}application_name=${name}`;

async function backends(applicationName: string, where = 'true'): Promise<number[]> {
  const { rows } = await pg.pool.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND ${where}`,
    [applicationName],
  );
  return rows.map((r) => r.pid);
}

async function terminate(pids: readonly number[]): Promise<void> {
  if (pids.length > 0) await pg.pool.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [pids]);
}

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly json: Record<string, unknown>;
}

async function call(base: string, method: string, path: string, body?: unknown, ifMatch?: string): Promise<Answer> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(ifMatch === undefined ? {} : { 'if-match': ifMatch }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

function expectUnavailable(answer: Answer): void {
  expect(answer.status, answer.text).toBe(503);
  expect(answer.headers.get('retry-after')).toBe('1');
  expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(answer.json).toMatchObject({ status: 503, code: 'STORE_UNAVAILABLE' });
  expect(answer.text).not.toMatch(/57P01|ECONNREFUSED|terminat|postgres|eventfold/i);
}

/** The example app and its HTTP server in this process, on PostgreSQL at `url`. */
async function startInProcess(url: string, schema: string, logger?: Logger) {
  const infrastructure = await openPostgres(url, schema, logger === undefined ? {} : { logger });
  const app: UserDetailsApp = await createUserDetailsApp(infrastructure, { projection: 'inline' });
  const server: Server = createUserDetailsServer({ role: 'all', commands: app.commands, queries: app.queries });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await app.close();
  });
  return { app, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** A TCP proxy in front of PostgreSQL that a test can cut (refuse and drop everything) and restore. */
async function startProxy() {
  const sockets = new Set<Socket>();
  const server = createTcpServer((client) => {
    const upstream = connect(Number(target.port || 5432), target.hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => socket.destroy());
    }
    client.pipe(upstream).pipe(client);
  });
  const listen = (port: number) => new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  await listen(0);
  const port = (server.address() as AddressInfo).port;
  const proxy = {
    port,
    url: `postgres://${target.username}@127.0.0.1:${port}${target.pathname}`,
    async cut() {
      for (const socket of sockets) socket.destroy();
      if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    async restore() {
      if (!server.listening) await listen(port);
    },
  };
  cleanups.push(() => proxy.cut());
  return proxy;
}

describe('the example on PostgreSQL when connections go away', () => {
  it('survives the server terminating its idle pooled connections, reports it, and keeps serving', async () => {
    const applicationName = `eft_idle_${process.pid}`;
    const service: RunningService = await startService([], {
      DATABASE_URL: withAppName(DATABASE_URL, applicationName),
      EVENTFOLD_PG_SCHEMA: pg.schema('idle'),
    });
    cleanups.push(() => killService(service));
    expect((await call(service.url, 'POST', '/users', { userId: 'olga', userName: 'olga', email: 'olga@example.com', password: 'olga-password' })).status).toBe(201);
    await waitFor(async () => {
      await Promise.all(Array.from({ length: 4 }, () => call(service.url, 'GET', '/users?limit=5')));
      return (await backends(applicationName, "state = 'idle'")).length > 0;
    }, 'idle pooled connections');

    const terminated = await backends(applicationName);
    await terminate(terminated);
    // pg_terminate_backend only signals: each backend says goodbye when it gets to it. Wait until
    // every one is gone and the service heard every goodbye, or a request could pick a connection
    // whose goodbye is still on its way (a 503 the client would retry, not what this test is about).
    await waitFor(async () => (await backends(applicationName)).every((pid) => !terminated.includes(pid)), 'the terminated backends to exit');
    const reports = () => service.output().match(/closed an idle pooled connection/g)?.length ?? 0;
    await waitFor(() => reports() >= terminated.length || !service.alive(), 'the pool to report every dropped connection');
    expect(service.alive(), service.output()).toBe(true);

    // The pool replaced the connections: reads and writes work again, and nothing was a 500.
    const read = await call(service.url, 'GET', '/users/olga');
    expect(read.status).toBe(200);
    expect((await call(service.url, 'POST', '/users/olga/password', { password: 'olga-new-password' }, '"1"')).status).toBe(200);
    expect(service.output()).not.toMatch(/ 500 |Unhandled 'error' event/);
  });

  it("the example's own pool listener reports a dropped idle connection through the example's logger", async () => {
    const applicationName = `eft_poollog_${process.pid}`;
    const warnings: { message: string; context: Readonly<Record<string, unknown>> | undefined }[] = [];
    const logger: Logger = { ...silent, warn: (message, context) => warnings.push({ message, context }) };
    const { base } = await startInProcess(withAppName(DATABASE_URL, applicationName), pg.schema('poollog'), logger);
    await waitFor(async () => {
      await call(base, 'GET', '/users?limit=1');
      return (await backends(applicationName, "state = 'idle'")).length > 0;
    }, 'an idle pooled connection');
    await terminate(await backends(applicationName));
    await waitFor(() => warnings.some((w) => /closed an idle pooled connection/.test(w.message)), "the example's report");
    expect(warnings.find((w) => /closed an idle pooled connection/.test(w.message))?.context).toMatchObject({ code: '57P01' });
    // The first request may still meet a connection the pool has not dropped yet: a 503, then 200.
    let status = (await call(base, 'GET', '/users?limit=1')).status;
    if (status === 503) status = (await call(base, 'GET', '/users?limit=1')).status;
    expect(status).toBe(200);
  });

  it('the read service (async projection) survives its connections being terminated and keeps projecting', async () => {
    const schema = pg.schema('idleread');
    const readerName = `eft_idleread_${process.pid}`;
    const writer = await startService(['--role', 'write'], { DATABASE_URL, EVENTFOLD_PG_SCHEMA: schema });
    cleanups.push(() => killService(writer));
    const reader = await startService(['--role', 'read'], { DATABASE_URL: withAppName(DATABASE_URL, readerName), EVENTFOLD_PG_SCHEMA: schema });
    cleanups.push(() => killService(reader));
    expect((await call(writer.url, 'POST', '/users', { userId: 'ula', userName: 'ula', email: 'ula@example.com', password: 'ula-password' })).status).toBe(201);
    await waitFor(async () => (await call(reader.url, 'GET', '/users/ula')).status === 200, 'the projection to show ula');

    // Every connection of the read service: pooled ones, the projection's, its wake-up listener.
    await terminate(await backends(readerName));
    await waitFor(() => /closed an idle pooled connection|dropped/.test(reader.output()) || !reader.alive(), 'the dropped connections to be reported');
    expect(reader.alive(), reader.output()).toBe(true);

    expect((await call(writer.url, 'POST', '/users', { userId: 'val', userName: 'val', email: 'val@example.com', password: 'val-password' })).status).toBe(201);
    const statuses: number[] = [];
    await waitFor(async () => {
      const status = (await call(reader.url, 'GET', '/users/val')).status;
      statuses.push(status);
      return status === 200;
    }, 'the projection to catch up after the terminations', 60_000);
    expect(statuses.filter((s) => s !== 200 && s !== 404 && s !== 503)).toEqual([]);
    expect(reader.alive()).toBe(true);
    expect(reader.output()).not.toMatch(/ 500 |Unhandled 'error' event/);
  });

  it('a read-model query terminated mid-flight is a 503 with Retry-After, and the next one works', async () => {
    const schema = pg.schema('readterm');
    const applicationName = `eft_readterm_${process.pid}`;
    const { base } = await startInProcess(withAppName(DATABASE_URL, applicationName), schema, silent);
    expect((await call(base, 'POST', '/users', { userId: 'pia', userName: 'pia', email: 'pia@example.com', password: 'pia-password' })).status).toBe(201);

    for (const path of ['/users/pia', '/users?limit=10', '/users?userName=pia']) {
      // Hold a lock the query must wait for, so it is surely running when its backend is terminated.
      const locker = await pg.pool.connect();
      try {
        await locker.query('BEGIN');
        await locker.query(`LOCK TABLE "${schema}".users IN ACCESS EXCLUSIVE MODE`);
        const pending = call(base, 'GET', path);
        await waitFor(async () => (await backends(applicationName, "wait_event_type = 'Lock'")).length > 0, `${path} to wait for the lock`);
        await terminate(await backends(applicationName, "wait_event_type = 'Lock'"));
        expectUnavailable(await pending);
      } finally {
        await locker.query('ROLLBACK');
        locker.release();
      }
      expect((await call(base, 'GET', path)).status).toBe(200);
    }
  });

  it('under load, terminating its connections again and again gives 503s with Retry-After, never a 500', async () => {
    const schema = pg.schema('load');
    const applicationName = `eft_load_${process.pid}`;
    const { base } = await startInProcess(withAppName(DATABASE_URL, applicationName), schema, silent);
    for (const name of ['uma', 'vic', 'wes']) {
      expect((await call(base, 'POST', '/users', { userId: name, userName: name, email: `${name}@example.com`, password: `${name}-password` })).status).toBe(201);
    }
    const answers: Answer[] = [];
    let terminations = 0;
    let running = true;
    const readers = Array.from({ length: 6 }, async (_, i) => {
      const paths = ['/users?limit=10', '/users/uma', '/users?userName=vic', '/users/wes/history', '/users/vic?version=1', '/users/uma'];
      while (running) answers.push(await call(base, 'GET', paths[i]!));
    });
    const deadline = Date.now() + 3_000;
    while (Date.now() < deadline || answers.filter((a) => a.status === 503).length === 0) {
      if (Date.now() > deadline + 20_000) break;
      await terminate(await backends(applicationName));
      terminations += 1;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    running = false;
    await Promise.all(readers);
    expect(terminations).toBeGreaterThan(0);
    const statuses = new Set(answers.map((a) => a.status));
    expect([...statuses].filter((s) => s !== 200 && s !== 503), answers.find((a) => a.status !== 200 && a.status !== 503)?.text).toEqual([]);
    const unavailable = answers.filter((a) => a.status === 503);
    expect(unavailable.length).toBeGreaterThan(0);
    for (const answer of unavailable) expectUnavailable(answer);
    expect((await call(base, 'GET', '/users/uma')).status).toBe(200);
  });

  it('a command terminated mid-flight is a 503 with Retry-After, and nothing is half-written', async () => {
    const schema = pg.schema('writeterm');
    const applicationName = `eft_writeterm_${process.pid}`;
    const { base } = await startInProcess(withAppName(DATABASE_URL, applicationName), schema);
    expect((await call(base, 'POST', '/users', { userId: 'quinn', userName: 'quinn', email: 'q@example.com', password: 'quinn-password' })).status).toBe(201);

    const locker = await pg.pool.connect();
    try {
      await locker.query('BEGIN');
      // The inline projection writes the users table in the append's transaction: the append waits here.
      await locker.query(`LOCK TABLE "${schema}".users IN ACCESS EXCLUSIVE MODE`);
      const pending = call(base, 'POST', '/users/quinn/password', { password: 'quinn-new-password' }, '"1"');
      await waitFor(async () => (await backends(applicationName, "wait_event_type = 'Lock'")).length > 0, 'the append to wait for the lock');
      await terminate(await backends(applicationName, "wait_event_type = 'Lock'"));
      expectUnavailable(await pending);
    } finally {
      await locker.query('ROLLBACK');
      locker.release();
    }
    const store = new PostgresEventStore({ pool: pg.pool, schema });
    expect(await expectConsistent(store, await postgresUserReadModel(pg.pool, schema))).toBe(2);
    expect((await call(base, 'POST', '/users/quinn/password', { password: 'quinn-new-password' }, '"1"')).status).toBe(200);
  });

  it('connections cut by the network mid-request (read and write) are a 503, and nothing is half-written', async () => {
    const schema = pg.schema('cut');
    const proxy = await startProxy();
    const { base } = await startInProcess(proxy.url, schema, silent);
    expect((await call(base, 'POST', '/users', { userId: 'tom', userName: 'tom', email: 'tom@example.com', password: 'tom-password' })).status).toBe(201);
    for (const request of [
      () => call(base, 'GET', '/users?limit=5'),
      () => call(base, 'POST', '/users/tom/password', { password: 'tom-new-password' }, '"1"'),
    ]) {
      const locker = await pg.pool.connect();
      try {
        await locker.query('BEGIN');
        await locker.query(`LOCK TABLE "${schema}".users IN ACCESS EXCLUSIVE MODE`);
        const pending = request();
        await waitFor(
          async () => (await pg.pool.query(`SELECT 1 FROM pg_locks WHERE NOT granted AND relation = '"${schema}".users'::regclass`)).rowCount! > 0,
          'the request to wait for the lock',
        );
        await proxy.cut();
        expectUnavailable(await pending);
      } finally {
        await locker.query('ROLLBACK');
        locker.release();
        await proxy.restore();
      }
    }
    const store = new PostgresEventStore({ pool: pg.pool, schema });
    expect(await expectConsistent(store, await postgresUserReadModel(pg.pool, schema))).toBe(2);
  });

  it('a server that refuses connections is a 503 on every read and write path, and it recovers', async () => {
    const schema = pg.schema('refused');
    const proxy = await startProxy();
    const { base } = await startInProcess(proxy.url, schema, silent);
    expect((await call(base, 'POST', '/users', { userId: 'rex', userName: 'rex', email: 'rex@example.com', password: 'rex-password' })).status).toBe(201);

    await proxy.cut();
    expectUnavailable(await call(base, 'GET', '/users/rex'));
    expectUnavailable(await call(base, 'GET', '/users?limit=5'));
    expectUnavailable(await call(base, 'GET', '/users?userName=rex'));
    expectUnavailable(await call(base, 'GET', '/users/rex/history'));
    expectUnavailable(await call(base, 'GET', '/users/rex?version=1'));
    expectUnavailable(await call(base, 'POST', '/users/rex/password', { password: 'rex-new-password' }, '"1"'));
    expectUnavailable(await call(base, 'POST', '/users/rex/email', { email: 'rex@new.example.com' }, '*'));
    expectUnavailable(await call(base, 'POST', '/users', { userId: 'sue', userName: 'sue', email: 'sue@example.com', password: 'sue-password' }));
    expectUnavailable(await call(base, 'DELETE', '/users/rex'));

    await proxy.restore();
    const statuses: number[] = [];
    await waitFor(async () => {
      const status = (await call(base, 'GET', '/users/rex')).status;
      statuses.push(status);
      return status === 200;
    }, 'reads to work again');
    expect(statuses.filter((s) => s !== 200 && s !== 503)).toEqual([]);
    expect((await call(base, 'POST', '/users/rex/password', { password: 'rex-new-password' }, '"1"')).status).toBe(200);
    const store = new PostgresEventStore({ pool: pg.pool, schema });
    expect(await expectConsistent(store, await postgresUserReadModel(pg.pool, schema))).toBe(3);
  });
});
