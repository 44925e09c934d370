import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AtLeastOnceTarget, ProjectionRunner, defineProjection, type AnyEvent } from '../src/index.js';
import { NatsCheckpointStore, NatsDeadLetterStore, NatsProjectionLock, natsWakeUps } from '../src/nats/index.js';
import { newDeadLetter } from '../src/projections/dead-letters.js';
import { filesProjection, readFiles } from './fixtures/cli-nats-files.js';
import { runCli, sourceUrl } from './support/cli-process.js';
import { NATS_URL, natsStores } from './support/nats.js';

/**
 * `eventfold projections rebuild|reset` on checkpoints in a NATS KV bucket, under the runners'
 * `NatsProjectionLock` lease in the same bucket, with spawned CLI processes.
 */
const stores = natsStores('clilock');
const dir = mkdtempSync(join(tmpdir(), 'eventfold-cli-nats-lock-'));
afterAll(async () => {
  await stores.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('CLI projections on nats-kv checkpoints, with the lease', () => {
  it('refuses rebuild and reset while a runner holds the lease, and runs them (read model = a full fold) once it stopped', async () => {
    const store = await stores.create();
    for (let i = 0; i < 30; i++) {
      await store.append(`acct-${i % 4}`, [{ type: 'Deposited', data: { amount: i } }], { expectedVersion: 'any' });
    }
    const bucket = stores.bucket('clilk');
    const files = join(dir, 'files');
    writeFileSync(
      join(dir, 'eventfold.config.mjs'),
      `import { filesProjection } from ${JSON.stringify(sourceUrl('../test/fixtures/cli-nats-files.ts'))};\n` +
        `export default { projections: [filesProjection(${JSON.stringify(files)})] };\n`,
    );
    const target = `${NATS_URL}?stream=${store.options.stream}&subjectPrefix=${store.options.subjectPrefix}`;
    const cli = (...args: string[]) => runCli(['projections', ...args, '--db', target, '--checkpoints', `nats-kv:${bucket}`], { cwd: dir });
    const checkpoints = new NatsCheckpointStore({ connection: store.connection, bucket, storage: 'memory' });
    await checkpoints.migrate();
    const runner = new ProjectionRunner({
      store,
      projection: filesProjection(files),
      target: new AtLeastOnceTarget({ checkpoints, context: () => undefined }),
      lock: new NatsProjectionLock({ connection: store.connection, bucket, storage: 'memory', ttlMs: 2_000 }),
      wakeUps: natsWakeUps(store),
      owner: 'app-runner',
      pollIntervalMs: 100,
    });
    const fold = async () => Object.fromEntries((await store.readAll().toArray()).map((e) => [e.eventId, e.position]));
    try {
      await runner.start();
      await runner.waitUntilCaughtUp({ timeoutMs: 30_000 });
      expect(readFiles(files)).toEqual(await fold());

      const status = await cli('status', '--json');
      expect(status.code, status.stderr).toBe(0);
      expect(jsonLines(status.stdout)).toEqual([expect.objectContaining({ projection: 'event-files', state: 'running', runner: 'app-runner' })]);

      for (const sub of ['rebuild', 'reset']) {
        const refused = await cli(sub, 'event-files');
        expect(refused.code, refused.stderr).toBe(4);
        expect(refused.stderr).toMatch(/event-files/);
      }
      // Nothing was touched.
      expect(readFiles(files)).toEqual(await fold());
      expect((await checkpoints.load('event-files'))?.position).toBe(await store.headPosition());

      await runner.stop();
      const stopped = await cli('status', '--json');
      expect(jsonLines(stopped.stdout)[0]).toMatchObject({ state: 'unknown', runner: null });

      // A damaged read model and a parked event, then a rebuild: every event again, checkpoint at
      // the head, and the letter gone with the old read model.
      rmSync(files, { recursive: true, force: true });
      const parked = new NatsDeadLetterStore({ connection: store.connection, bucket, storage: 'memory' });
      const [first] = await store.readAll().toArray();
      await parked.write('event-files', { kind: 'park', letter: newDeadLetter('event-files', first!, new Error('old failure'), 5) });
      expect(jsonLines((await cli('status', '--json')).stdout)[0]).toMatchObject({ parked: 1 });
      await store.append('acct-9', [{ type: 'Deposited', data: { amount: 99 } }], { expectedVersion: 'any' });
      const rebuilt = await cli('rebuild', 'event-files', '--batch-size', '7');
      expect(rebuilt.code, rebuilt.stderr).toBe(0);
      expect(readFiles(files)).toEqual(await fold());
      expect((await checkpoints.load('event-files'))?.position).toBe(await store.headPosition());
      expect(await parked.count('event-files')).toBe(0);
      // The CLI released its lease on the way out: a runner takes it at once.
      const lock = new NatsProjectionLock({ connection: store.connection, bucket, storage: 'memory' });
      expect(await lock.inspect('event-files')).toBeUndefined();

      const reset = await cli('reset', 'event-files');
      expect(reset.code, reset.stderr).toBe(0);
      expect(readFiles(files)).toEqual({});
      expect((await checkpoints.load('event-files'))?.position).toBe(0);
      expect(await lock.inspect('event-files')).toBeUndefined();

      // A runner started after the reset replays the log.
      const again = new ProjectionRunner({
        store,
        projection: filesProjection(files),
        target: new AtLeastOnceTarget({ checkpoints, context: () => undefined }),
        lock,
        owner: 'app-runner-2',
      });
      await again.start();
      await again.waitUntilCaughtUp({ timeoutMs: 30_000 });
      await again.stop();
      expect(readFiles(files)).toEqual(await fold());
    } finally {
      await runner.stop();
      await checkpoints.close();
      await store.close();
    }
  });

  it('a rebuild while a lease of another process is still unexpired (its holder died) is refused; after the expiry it runs', async () => {
    const store = await stores.create();
    await store.append('acct-1', [{ type: 'Deposited', data: { amount: 1 } }], { expectedVersion: 'any' });
    const bucket = stores.bucket('clidead');
    const files = join(dir, 'files-dead');
    const caseDir = mkdtempSync(join(dir, 'dead-'));
    writeFileSync(
      join(caseDir, 'eventfold.config.mjs'),
      `import { filesProjection } from ${JSON.stringify(sourceUrl('../test/fixtures/cli-nats-files.ts'))};\n` +
        `export default { projections: [filesProjection(${JSON.stringify(files)})] };\n`,
    );
    const target = `${NATS_URL}?stream=${store.options.stream}&subjectPrefix=${store.options.subjectPrefix}`;
    const { connect } = await import('@nats-io/transport-node');
    const doomed = await connect({ servers: NATS_URL });
    const ttlMs = 8_000;
    const lease = await new NatsProjectionLock({ connection: doomed, bucket, storage: 'memory', ttlMs, maxClockSkewMs: 100 }).tryAcquire('event-files', 'dead-runner');
    expect(lease).toBeDefined();
    // The holder dies: its connection goes, nothing is released.
    await doomed.close();
    const diedAt = Date.now();
    const rebuild = () => runCli(['projections', 'rebuild', 'event-files', '--db', target, '--checkpoints', `nats-kv:${bucket}`], { cwd: caseDir });
    const early = await rebuild();
    expect(Date.now() - diedAt).toBeLessThan(ttlMs);
    expect(early.code, early.stderr).toBe(4);
    expect(readFiles(files)).toEqual({});
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, diedAt + ttlMs + 1_500 - Date.now())));
    // The CLI allows the default 1 s of clock skew past the expiry the holder wrote.
    const late = await rebuild();
    expect(late.code, late.stderr).toBe(0);
    expect(Object.keys(readFiles(files))).toHaveLength(1);
    await store.close();
  });

  it('shows parked events from the bucket and retry-parked waits for the running runner to re-apply them', async () => {
    const store = await stores.create();
    for (let i = 1; i <= 12; i++) await store.append(`acct-${i % 3}`, [{ type: 'Deposited', data: { amount: i } }], { expectedVersion: 'any' });
    const bucket = stores.bucket('clidlq');
    const connection = store.connection;
    const checkpoints = new NatsCheckpointStore({ connection, bucket, storage: 'memory' });
    const deadLetters = new NatsDeadLetterStore({ connection, bucket, storage: 'memory' });
    const applied = new Set<number>();
    let broken = true;
    const runner = new ProjectionRunner({
      store,
      projection: defineProjection<AnyEvent, unknown>({
        name: 'picky',
        handlers: {},
        any: (e) => {
          if (broken && (e.data as { amount: number }).amount === 7) throw new Error('seven is not allowed');
          applied.add(e.position);
        },
      }),
      target: new AtLeastOnceTarget({ checkpoints, context: () => undefined, deadLetters }),
      lock: new NatsProjectionLock({ connection, bucket, storage: 'memory' }),
      owner: 'picky-runner',
      poisonEvents: 'park',
      retry: { maxAttempts: 2, initialDelayMs: 5, maxDelayMs: 20 },
      pollIntervalMs: 100,
      onError: () => undefined,
    });
    const target = `${NATS_URL}?stream=${store.options.stream}&subjectPrefix=${store.options.subjectPrefix}`;
    const cli = (...args: string[]) => runCli(['projections', ...args, '--db', target, '--checkpoints', `nats-kv:${bucket}`]);
    try {
      await runner.start();
      await runner.waitUntilCaughtUp({ timeoutMs: 30_000 });
      expect(applied.size).toBe(11);
      const status = await cli('status', '--json');
      expect(status.code, status.stderr).toBe(0);
      expect(jsonLines(status.stdout)[0]).toMatchObject({ projection: 'picky', state: 'running', runner: 'picky-runner', parked: 1 });
      expect(String(jsonLines(status.stdout)[0]!['lastError'])).toMatch(/seven is not allowed/);

      broken = false;
      const retried = await cli('retry-parked', 'picky', '--timeout', '30', '--json');
      expect(retried.code, retried.stderr + retried.stdout).toBe(0);
      // It saw the runner's lease and waited for the outcome.
      expect(jsonLines(retried.stdout).at(-1)).toMatchObject({ marked: 1, applied: 1, failed: 0, waited: true });
      expect(await deadLetters.count('picky')).toBe(0);
      expect(applied.size).toBe(12);
      const after = await cli('status', '--json');
      expect(jsonLines(after.stdout)[0]).toMatchObject({ parked: 0 });
    } finally {
      await runner.stop();
      await store.close();
    }
  });
});
