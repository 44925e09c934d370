import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AtLeastOnceTarget, ProjectionRunner } from '../src/index.js';
import { NatsCheckpointStore, NatsProjectionLock, natsWakeUps } from '../src/nats/index.js';
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

      // A damaged read model, then a rebuild: every event again, checkpoint at the head.
      rmSync(files, { recursive: true, force: true });
      await store.append('acct-9', [{ type: 'Deposited', data: { amount: 99 } }], { expectedVersion: 'any' });
      const rebuilt = await cli('rebuild', 'event-files', '--batch-size', '7');
      expect(rebuilt.code, rebuilt.stderr).toBe(0);
      expect(readFiles(files)).toEqual(await fold());
      expect((await checkpoints.load('event-files'))?.position).toBe(await store.headPosition());
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
});
