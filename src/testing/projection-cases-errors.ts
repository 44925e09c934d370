import type { StoredRunnerError } from '../projections/runner-error.js';
import { expect } from './expect.js';
import { logPositions, seed, sleep, type ProjectionSuite } from './projection-context.js';

/**
 * A runner's last fault stored beside its checkpoint (`CheckpointStore.loadError`), as tools read
 * it. A checkpoint store without `loadError` declares that it keeps none: then nothing is stored.
 */
export function describeStoredErrorCases<Ctx>(suite: ProjectionSuite<Ctx>): void {
  suite.test('async: a retried fault is stored beside the checkpoint while it lasts, cleared once the runner gets past it; a final one stays as failed', async () => {
    const f = await suite.fresh();
    await seed(f.store, 20);
    const ninth = (await logPositions(f.store))(9);
    const load = f.checkpoints.loadError?.bind(f.checkpoints);
    const stored = async (): Promise<StoredRunnerError | undefined> => (load === undefined ? undefined : load('accounts'));
    let healed = false;
    const runner = f.runner(f.accounts({ failAt: { position: ninth, armed: () => !healed } }), {
      retry: { maxAttempts: Number.POSITIVE_INFINITY, initialDelayMs: 5, maxDelayMs: 20 },
      onError: () => {},
    });
    await runner.start();
    if (load === undefined) {
      await sleep(200);
      expect(await runner.storedError()).toBeUndefined();
      await runner.stop();
      return;
    }
    const deadline = Date.now() + suite.timeoutMs;
    let seen = await stored();
    while ((seen?.attempts ?? 0) < 3 && Date.now() < deadline) {
      await sleep(10);
      seen = await stored();
    }
    expect(seen).toMatchObject({ state: 'retrying' });
    expect(seen!.message).toMatch(`boom at ${ninth}`);
    expect(seen!.attempts).toBeGreaterThanOrEqual(3);
    expect(Math.abs(Date.now() - seen!.at.getTime())).toBeLessThanOrEqual(60_000);
    expect(await runner.storedError()).toBeDefined();
    healed = true;
    await runner.waitUntilCaughtUp({ timeoutMs: suite.timeoutMs });
    while ((await stored()) !== undefined && Date.now() < deadline) await sleep(10);
    expect(await stored()).toBeUndefined();
    await runner.stop();

    healed = false;
    await seed(f.store, 5);
    const head = await f.store.headPosition();
    const stopping = f.runner(f.accounts({ failAt: { position: head, armed: () => !healed } }), {
      retry: { maxAttempts: 2, initialDelayMs: 1 },
      onError: () => {},
    });
    await stopping.start();
    expect(await stopping.whenStopped()).toMatchObject({ state: 'failed' });
    const final = await stored();
    expect(final).toMatchObject({ state: 'failed', attempts: 2 });
    expect(final!.message).toMatch(`boom at ${head}`);
  });
}
