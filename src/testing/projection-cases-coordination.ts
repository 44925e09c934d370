import { CheckpointConflictError, ProjectionLockedError } from '../projections/errors.js';
import type { ProjectionProgress } from '../projections/progress.js';
import { expectFolded, logPositions, seed, type ProjectionSuite } from './projection-context.js';
import { expect } from './expect.js';
import { foldAccounts } from './projection-model.js';

/** One runner at a time, rebuilds, and the checkpoint compare-and-set. */
export function describeCoordinationCases<Ctx>(suite: ProjectionSuite<Ctx>): void {
  suite.test('async: only one runner processes a projection; another waits (or fails when told to) and takes over on stop', async () => {
    const f = await suite.fresh();
    await seed(f.store, 200);
    const a = f.runner(f.accounts({ runnerId: 'a' }), { lockRetryMs: 20 });
    const b = f.runner(f.accounts({ runnerId: 'b' }), { lockRetryMs: 20 });
    await a.start();
    await b.start();
    expect(b.state).toBe('waiting-for-lock');
    await a.waitUntilCaughtUp({ timeoutMs: suite.timeoutMs });
    await expect(f.runner(f.accounts({ runnerId: 'c' }), { whenLocked: 'fail' }).start()).rejects.toThrow(ProjectionLockedError);
    expect(new Set((await f.readModel()).applied.map((row) => row.runner))).toEqual(new Set(['a']));
    await a.stop();
    await seed(f.store, 20);
    await b.waitUntilCaughtUp({ timeoutMs: suite.timeoutMs });
    await b.stop();
    const expected = foldAccounts(await f.store.readAll().toArray());
    const at = await logPositions(f.store);
    const byA = expected.applied.filter((p) => p <= at(200));
    const applied = (await f.readModel()).applied;
    expect(applied.filter((row) => row.runner === 'a').map((row) => row.position)).toEqual(byA);
    expect(applied.filter((row) => row.runner === 'b').map((row) => row.position)).toEqual(expected.applied.filter((p) => p > at(200)));
    expect(applied.every((row) => row.runner === 'a' || row.runner === 'b')).toBe(true);
    await expectFolded(f);
  });

  suite.test('async: rebuilds with progress, and rebuilds by itself when the version changes', async () => {
    const f = await suite.fresh();
    await seed(f.store, 400);
    const first = f.runner(f.accounts(), { batchSize: 100 });
    await first.start();
    await first.waitUntilCaughtUp({ timeoutMs: suite.timeoutMs });
    await first.stop();
    await f.damage();
    const at = await logPositions(f.store);

    const progress: ProjectionProgress[] = [];
    const rebuilder = f.runner(f.accounts(), { batchSize: 40, progressIntervalMs: 0, onProgress: (p) => progress.push(p) });
    await rebuilder.rebuild({ timeoutMs: suite.timeoutMs });
    await rebuilder.stop();
    await expectFolded(f);
    const rebuild = progress.filter((p) => p.phase === 'rebuild');
    expect(rebuild).toEqual(progress); // a rebuild of a runner that was never started reports only rebuild progress
    expect(rebuild.map((p) => [p.position, p.done])).toEqual([
      ...[0, 40, 80, 120, 160, 200, 240, 280, 320, 360, 400].map((n) => [at(n), false]),
      [at(400), true],
    ]);
    expect(rebuild[0]).toMatchObject({ processed: 0, position: 0, headPosition: at(400), done: false, reason: 'requested' });
    expect(rebuild.at(-1)).toMatchObject({ processed: 400, position: at(400), headPosition: at(400), done: true, ratio: 1, estimatedMsLeft: 0 });
    const mid = rebuild.find((p) => p.position === at(200))!;
    // The share of the log's positions passed (0.5 where positions have no gaps).
    expect(mid.ratio).toBe(at(200) / at(400));
    expect(mid.eventsPerSecond).toBeGreaterThan(0);
    expect(mid.estimatedMsLeft).toBeGreaterThanOrEqual(0);

    // Version 2: the stored checkpoint says version 1, so the runner resets and rebuilds on start.
    await f.damage();
    const v2 = f.runner(f.accounts({ version: 2 }), { onProgress: (p) => progress.push(p) });
    await v2.start();
    await v2.waitUntilCaughtUp({ timeoutMs: suite.timeoutMs });
    await v2.stop();
    expect(progress.at(-1)).toMatchObject({ phase: 'rebuild', reason: 'version-changed', done: true, processed: 400 });
    expect(v2.checkpoint).toEqual({ position: at(400), version: 2 });
    expect(await f.checkpoints.load('accounts')).toEqual({ position: at(400), version: 2 });
    await expectFolded(f);
  });

  suite.test('checkpoints: a stale writer whose expected checkpoint moved cannot save (compare-and-set), nothing is written', async () => {
    const f = await suite.fresh();
    expect(await f.checkpoints.load('accounts')).toBeUndefined();
    await f.checkpoints.save('accounts', undefined, { position: 5, version: 1 });
    await expect(f.checkpoints.save('accounts', undefined, { position: 9, version: 1 })).rejects.toThrow(CheckpointConflictError);
    await expect(f.checkpoints.save('accounts', { position: 4, version: 1 }, { position: 9, version: 1 })).rejects.toThrow(
      /Checkpoint of projection 'accounts' is position 5 \(version 1\) but this runner expected position 4/,
    );
    await expect(f.checkpoints.save('accounts', { position: 5, version: 2 }, { position: 9, version: 2 })).rejects.toThrow(
      CheckpointConflictError,
    );
    expect(await f.checkpoints.load('accounts')).toEqual({ position: 5, version: 1 });
    await f.checkpoints.save('accounts', { position: 5, version: 1 }, { position: 9, version: 1 });
    expect(await f.checkpoints.load('accounts')).toEqual({ position: 9, version: 1 });
  });
}
