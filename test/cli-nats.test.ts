import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync } from 'node:fs';
import { Pool } from 'pg';
import { AtLeastOnceTarget, defineProjection, InMemoryProjectionLock, ProjectionRunner, type AnyEvent } from '../src/index.js';
import { NatsCheckpointStore, NatsEventStore, natsWakeUps } from '../src/nats/index.js';
import { PostgresEventStore } from '../src/postgres/index.js';
import { SqliteEventStore, SqliteProjectionLock, SqliteProjectionTarget } from '../src/sqlite/index.js';
import { sqliteUserEmails } from './fixtures/cli-app.js';
import { LiveCli, runCli, sourceUrl } from './support/cli-process.js';
import { describeCliSuite, expectTerminalSafe, HOSTILE_STREAM, HOSTILE_TEXT, writeConfig, type CliStoreCase } from './support/cli-suite.js';
import { NATS_URL, natsStores, uniqueStreamNames } from './support/nats.js';
import { DATABASE_URL, pgTestDatabase } from './support/postgres.js';
import { hostAndPort, startTcpProxy, viaPort } from './support/tcp-proxy.js';

const stores = natsStores('cli');
const pg = pgTestDatabase({ max: 2 });
const dir = mkdtempSync(join(tmpdir(), 'eventfold-cli-nats-'));
let store: NatsEventStore;
let target: string;

beforeAll(async () => {
  store = await stores.create();
  target = `${NATS_URL}?stream=${store.options.stream}&subjectPrefix=${store.options.subjectPrefix}`;
  await store.append('user-1', [{ type: 'UserRegistered', data: { name: 'Ada', email: 'ada@example.com' } }], { expectedVersion: 'no-stream' });
  await store.append('order-1', [{ type: 'OrderPlaced', data: { total: 3 } }], { expectedVersion: 'no-stream' });
  await store.append(
    'user-1',
    [
      { type: 'EmailChanged', data: { email: 'ada@lovelace.org' } },
      { type: 'UserRenamed', data: { name: 'Ada Lovelace' } },
    ],
    { expectedVersion: 1 },
  );
  await store.append(HOSTILE_STREAM, [{ type: 'Hostile', data: { text: HOSTILE_TEXT } }], { expectedVersion: 'no-stream' });
});
afterAll(async () => {
  await store?.close();
  await stores.cleanup();
  await pg.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * The shared CLI suite on NATS, with the runners' checkpoints, locks and dead letters in the read
 * model's SQLite file (as the example app keeps them): `--checkpoints <file>` on the command line,
 * `checkpoints` in the config file.
 */
const suiteStores = natsStores('clisuite');
const suiteDir = mkdtempSync(join(tmpdir(), 'eventfold-cli-nats-suite-'));
const suiteOpen: { close(): Promise<void> }[] = [];
let suiteCounter = 0;
describeCliSuite({
  kind: 'nats',
  title: 'nats (checkpoints in a SQLite read model)',
  async create(tag): Promise<CliStoreCase> {
    const caseDir = join(suiteDir, `${tag}-${++suiteCounter}`);
    mkdirSync(caseDir);
    // 'fresh' is migrated by the CLI, which makes file streams.
    const natsStore = await suiteStores.create(tag === 'fresh' ? { storage: 'file' } : {});
    const readPath = join(caseDir, 'read.sqlite');
    const read = new SqliteEventStore({ path: readPath });
    suiteOpen.push(natsStore, read);
    const url = `${NATS_URL}?stream=${natsStore.options.stream}&subjectPrefix=${natsStore.options.subjectPrefix}`;
    writeConfig(
      caseDir,
      `import { sqliteUserEmails, User } from ${JSON.stringify(sourceUrl('../test/fixtures/cli-app.ts'))};
` +
        `export default { store: ${JSON.stringify(url)}, checkpoints: ${JSON.stringify(readPath)}, projections: [sqliteUserEmails], aggregates: [{ streamPrefix: 'user', aggregate: User }] };
`,
    );
    return {
      args: ['--db', url, '--checkpoints', readPath],
      store: natsStore,
      dir: caseDir,
      async startRunner(settings = {}) {
        const runner = new ProjectionRunner({
          pollIntervalMs: 50,
          ...settings,
          store: natsStore,
          projection: sqliteUserEmails,
          target: new SqliteProjectionTarget(read),
          lock: new SqliteProjectionLock(read.database, 60_000),
          wakeUps: natsWakeUps(natsStore),
        });
        await runner.start();
        return runner as unknown as ProjectionRunner<AnyEvent, unknown>;
      },
      async readModel() {
        const hasTable = read.database.prepare(`SELECT 1 FROM sqlite_schema WHERE name = 'cli_user_emails'`).get() !== undefined;
        if (!hasTable) return {};
        const rows = read.database.prepare('SELECT id, email FROM cli_user_emails ORDER BY id').all() as { id: string; email: string }[];
        return Object.fromEntries(rows.map((row) => [row.id, row.email]));
      },
    };
  },
  async cleanup() {
    for (const open of suiteOpen.splice(0)) await open.close();
    await suiteStores.cleanup();
    rmSync(suiteDir, { recursive: true, force: true });
  },
});

function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('eventfold CLI on NATS JetStream', () => {
  it('migrate creates the JetStream stream named in the URL', async () => {
    const names = uniqueStreamNames('climigrate');
    // Registered with the stores helper's cleanup by creating (and closing) a store on it afterwards.
    const url = `${NATS_URL}?stream=${names.stream}&subjectPrefix=${names.subjectPrefix}`;
    const before = await runCli(['read', 'user-1', '--db', url]);
    expect(before.code).toBe(1);
    expect(before.stderr.trimEnd().split('\n')).toHaveLength(1);
    const migrated = await runCli(['migrate', '--json', '--db', url]);
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(JSON.parse(migrated.stdout)).toMatchObject({ migrated: true, store: 'nats', headPosition: 0 });
    const created = await NatsEventStore.connect({ servers: NATS_URL, ...names });
    await created.close();
    const { connect } = await import('@nats-io/transport-node');
    const { jetstreamManager } = await import('@nats-io/jetstream');
    const nc = await connect({ servers: NATS_URL });
    await (await jetstreamManager(nc)).streams.delete(names.stream);
    await nc.close();
  });

  it('reads a stream, by range and backwards, and exits 3 for a missing one', async () => {
    const all = await runCli(['read', 'user-1', '--json', '--db', target]);
    expect(all.code, all.stderr).toBe(0);
    expect(jsonLines(all.stdout).map((e) => [e['version'], e['type']])).toEqual([
      [1, 'UserRegistered'],
      [2, 'EmailChanged'],
      [3, 'UserRenamed'],
    ]);
    const back = await runCli(['read', 'user-1', '--backwards', '--limit', '2', '--json', '--db', target]);
    expect(jsonLines(back.stdout).map((e) => e['version'])).toEqual([3, 2]);
    const missing = await runCli(['read', 'user-404', '--db', target]);
    expect(missing.code).toBe(3);
  });

  it('tails the log with a category filter, from a position', async () => {
    const result = await runCli(['tail', '--from', '0', '--category', 'user', '--max', '3', '--json', '--db', target]);
    expect(result.code, result.stderr).toBe(0);
    expect(jsonLines(result.stdout).map((e) => [e['streamId'], e['version']])).toEqual([
      ['user-1', 1],
      ['user-1', 2],
      ['user-1', 3],
    ]);
    const live = LiveCli.start(['tail', '--json', '--type', 'EmailChanged', '--poll-ms', '50', '--max', '1', '--from', String((await store.headPosition()) + 1), '--db', target]);
    try {
      await store.append('user-2', [{ type: 'EmailChanged', data: { email: 'live@example.com' } }], { expectedVersion: 'any' });
      const done = await live.exited;
      expect(done.code, done.stderr).toBe(0);
      expect(jsonLines(done.stdout)[0]).toMatchObject({ streamId: 'user-2', data: { email: 'live@example.com' } });
    } finally {
      live.kill();
    }
  });

  it('keeps hostile stored text off the terminal', async () => {
    for (const env of [{}, { FORCE_COLOR: '1' }]) {
      const result = await runCli(['read', HOSTILE_STREAM, '--db', target], { env });
      expect(result.code, result.stderr).toBe(0);
      expectTerminalSafe(result.stdout);
      expect(result.stdout).toContain('\\u001b[2J');
    }
  });

  it('lists streams with version, last position and last write, by prefix and paged', async () => {
    const all = await runCli(['streams', '--json', '--db', target]);
    expect(all.code, all.stderr).toBe(0);
    const rows = jsonLines(all.stdout);
    expect(rows.map((r) => r['streamId'])).toEqual(['order-1', HOSTILE_STREAM, 'user-1', 'user-2'].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
    const [last] = await store.readStream('user-1', { backwards: true, limit: 1 }).toArray();
    expect(rows.find((r) => r['streamId'] === 'user-1')).toEqual({
      streamId: 'user-1',
      version: 3,
      lastPosition: last!.position,
      lastWrittenAt: last!.recordedAt.toISOString(),
    });
    const users = await runCli(['streams', 'user-', '--limit', '1', '--after', 'user-1', '--json', '--db', target]);
    expect(jsonLines(users.stdout).map((r) => r['streamId'])).toEqual(['user-2']);
  });

  it('reads checkpoints and a runner fault from a NATS KV bucket while the read model is down, and clears the fault on recovery', async () => {
    const bucket = stores.bucket('clicps');
    const checkpoints = new NatsCheckpointStore({ connection: store.connection, bucket, storage: 'memory' });
    // The read model: a PostgreSQL table behind a TCP proxy, so the test can take it away.
    const proxy = await startTcpProxy(hostAndPort(DATABASE_URL));
    const schema = pg.schema('clikv');
    await pg.pool.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.seen (event_id text PRIMARY KEY)`);
    const readModel = new Pool({ connectionString: viaPort(DATABASE_URL, proxy.port), max: 2, connectionTimeoutMillis: 2_000 });
    readModel.on('error', () => undefined);
    const projection = defineProjection<AnyEvent, Pool>({
      name: 'seen-events',
      handlers: {},
      any: async (e, pool) => void (await pool.query(`INSERT INTO ${schema}.seen VALUES ($1) ON CONFLICT DO NOTHING`, [e.eventId])),
    });
    const runner = new ProjectionRunner({
      store,
      projection,
      target: new AtLeastOnceTarget({ checkpoints, context: () => readModel }),
      lock: new InMemoryProjectionLock(),
      wakeUps: natsWakeUps(store),
      pollIntervalMs: 50,
      retry: { maxAttempts: Number.POSITIVE_INFINITY, initialDelayMs: 20, maxDelayMs: 200 },
      onError: () => undefined,
    });
    const args = ['projections', 'status', '--json', '--db', target, '--checkpoints', `nats-kv:${bucket}`];
    const rows = async (): Promise<Record<string, unknown>[]> => {
      const result = await runCli(args);
      expect(result.code, result.stderr).toBe(0);
      return jsonLines(result.stdout);
    };
    try {
      await runner.start();
      await runner.waitUntilCaughtUp({ timeoutMs: 30_000 });
      const head = await store.headPosition();
      expect(await rows()).toEqual([
        expect.objectContaining({ projection: 'seen-events', state: 'unknown', position: head, lag: 0, version: 1, lastError: null, parked: 0, checkpoints: `NATS KV bucket ${bucket}` }),
      ]);

      proxy.cut();
      await store.append('user-9', [{ type: 'UserRegistered', data: { name: 'Kay', email: 'kay@example.com' } }], { expectedVersion: 'no-stream' });
      await expect
        .poll(async () => (await rows())[0], { timeout: 30_000, interval: 200 })
        .toMatchObject({ state: 'retrying', lag: (await store.headPosition()) - head, lastErrorSource: 'runner', errorAttempts: expect.any(Number) });
      const [faulty] = await rows();
      expect(faulty!['errorAttempts']).toBeGreaterThanOrEqual(1);
      expect(String(faulty!['lastError'])).toMatch(/connect|ECONN|terminat|timeout/i);
      expect(Date.parse(String(faulty!['errorAt']))).toBeGreaterThan(Date.now() - 60_000);
      const human = await runCli(args.filter((a) => a !== '--json'));
      expect(human.stdout).toMatch(/seen-events\s+retrying\s+/);
      expect(human.stdout).toMatch(/attempt \d+/);

      proxy.restore();
      await runner.waitUntilCaughtUp({ timeoutMs: 30_000 });
      await expect.poll(async () => (await rows())[0], { timeout: 30_000, interval: 200 }).toMatchObject({ state: 'unknown', lag: 0, lastError: null });
      expect(await checkpoints.loadError('seen-events')).toBeUndefined();

      // The runner holds no NatsProjectionLock lease in the bucket: the CLI cannot see it, and says so.
      const human2 = await runCli(args.filter((a) => a !== '--json'));
      expect(human2.stdout).toMatch(/seen-events\s+unknown\s+/);
    } finally {
      await runner.stop();
      await readModel.end();
      await proxy.close();
      await checkpoints.close();
    }
  });

  it('rebuilds a projection from the NATS log into a PostgreSQL read model named by checkpoints: { postgres, schema }', async () => {
    const schema = pg.schema('clinatspg');
    await (await PostgresEventStore.create({ pool: pg.pool, schema })).close();
    const caseDir = join(dir, 'pg-checkpoints');
    mkdirSync(caseDir);
    const storeSetting = { nats: NATS_URL, stream: store.options.stream, subjectPrefix: store.options.subjectPrefix };
    writeConfig(
      caseDir,
      `import { postgresUserEmails } from ${JSON.stringify(sourceUrl('../test/fixtures/cli-app.ts'))};\n` +
        `export default { store: ${JSON.stringify(storeSetting)}, checkpoints: { postgres: ${JSON.stringify(DATABASE_URL)}, schema: ${JSON.stringify(schema)} }, projections: [postgresUserEmails(${JSON.stringify(schema)})] };\n`,
    );
    const head = await store.headPosition();
    const before = await runCli(['projections', 'status', '--json'], { cwd: caseDir });
    expect(before.code, before.stderr).toBe(0);
    expect(jsonLines(before.stdout)).toEqual([expect.objectContaining({ projection: 'user-emails', state: 'never-ran', lag: head, checkpoints: expect.stringContaining(`(schema ${schema})`) })]);
    const rebuilt = await runCli(['projections', 'rebuild', 'user-emails', '--json', '--batch-size', '2'], { cwd: caseDir });
    expect(rebuilt.code, rebuilt.stderr).toBe(0);
    expect(jsonLines(rebuilt.stdout).at(-1)).toMatchObject({ projection: 'user-emails', done: true, position: head, headPosition: head });
    const { rows } = await pg.pool.query<{ id: string; email: string }>(`SELECT id, email FROM "${schema}".cli_user_emails ORDER BY id`);
    expect(rows.find((r) => r.id === 'user-1')?.email).toBe('ada@lovelace.org');
    const after = await runCli(['projections', 'status', '--json'], { cwd: caseDir });
    expect(jsonLines(after.stdout)).toEqual([expect.objectContaining({ state: 'stopped', position: head, lag: 0, version: 1 })]);
    const reset = await runCli(['projections', 'reset', 'user-emails'], { cwd: caseDir });
    expect(reset.code, reset.stderr).toBe(0);
    expect((await pg.pool.query(`SELECT 1 FROM "${schema}".cli_user_emails`)).rowCount).toBe(0);
  });

  it('without --checkpoints looks in the default KV bucket, and refuses a --checkpoints it cannot use', async () => {
    const status = await runCli(['projections', 'status', '--db', target]);
    expect(status.code, status.stderr).toBe(0);
    // Nothing where it looked: it names KV buckets that look like checkpoint buckets.
    const bucket = stores.bucket('checkpoints');
    const created = new NatsCheckpointStore({ connection: store.connection, bucket, storage: 'memory' });
    await created.migrate();
    const hinted = await runCli(['projections', 'status', '--db', target, '--checkpoints', `nats-kv:${bucket}x`]);
    expect(hinted.code, hinted.stderr).toBe(0);
    expect(hinted.stdout).toMatch(new RegExp(`No projections: none has a checkpoint in NATS KV bucket ${bucket}x \\(does not exist yet\\)`));
    expect(hinted.stdout).toMatch(new RegExp(`Checkpoints may be in: .*nats-kv:${bucket}\\b`));
    const missing = await runCli(['projections', 'status', '--db', target, '--checkpoints', join(dir, 'no-such.sqlite')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/There is no SQLite file at .*no-such\.sqlite/);
    const badBucket = await runCli(['projections', 'status', '--db', target, '--checkpoints', 'nats-kv:a.b']);
    expect(badBucket.code).toBe(2);
    const badParam = await runCli(['read', 'user-1', '--db', `${NATS_URL}?bucket=x`]);
    expect(badParam.code).toBe(2);
    expect(badParam.stderr).toMatch(/Unknown NATS URL parameter 'bucket'/);
  });

  it('takes { nats, stream, subjectPrefix } from the configuration file, and serves the event browser', async () => {
    writeFileSync(
      join(dir, 'eventfold.config.mjs'),
      `import { User } from ${JSON.stringify(sourceUrl('../test/fixtures/cli-app.ts'))};\n` +
        `export default { store: { nats: ${JSON.stringify(NATS_URL)}, stream: ${JSON.stringify(store.options.stream)}, subjectPrefix: ${JSON.stringify(store.options.subjectPrefix)} }, aggregates: [{ streamPrefix: 'user', aggregate: User }] };\n`,
    );
    const read = await runCli(['read', 'order-1', '--json'], { cwd: dir });
    expect(read.code, read.stderr).toBe(0);
    expect(jsonLines(read.stdout)[0]).toMatchObject({ streamId: 'order-1', type: 'OrderPlaced' });

    const inspect = LiveCli.start(['inspect', '--port', '0'], { cwd: dir });
    try {
      const out = await inspect.waitFor((s) => /Listening on http:\/\/127\.0\.0\.1:\d+\//.test(s), 60_000);
      const port = Number(/Listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(out)![1]);
      const get = (path: string) =>
        new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
          request({ host: '127.0.0.1', port, path }, (res) => {
            let body = '';
            res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) as Record<string, unknown> }));
          })
            .on('error', reject)
            .end();
        });
      expect(await get('/api/state?id=user-1&version=2')).toMatchObject({
        status: 200,
        body: { state: { name: 'Ada', email: 'ada@lovelace.org', renames: 0 } },
      });
      expect((await get('/api/streams?prefix=order')).body).toMatchObject({ streams: [{ streamId: 'order-1', version: 1 }], next: null });
      expect((await get('/api/log?from=1&limit=2')).body['events']).toHaveLength(2);
    } finally {
      inspect.child.kill('SIGINT');
      await inspect.exited;
    }
  });
});
