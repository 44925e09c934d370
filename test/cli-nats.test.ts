import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsEventStore } from '../src/nats/index.js';
import { LiveCli, runCli, sourceUrl } from './support/cli-process.js';
import { expectTerminalSafe, HOSTILE_STREAM, HOSTILE_TEXT } from './support/cli-suite.js';
import { NATS_URL, natsStores, uniqueStreamNames } from './support/nats.js';

const stores = natsStores('cli');
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
  rmSync(dir, { recursive: true, force: true });
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

  it('says clearly what a NATS store cannot do: projection bookkeeping', async () => {
    const status = await runCli(['projections', 'status', '--db', target]);
    expect(status.code).toBe(2);
    expect(status.stderr).toMatch(/^eventfold: error: The nats store keeps no projection checkpoints/);
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
