import { ProjectionHandlerError } from '../projections/errors.js';
import type { ProjectionProgress } from '../projections/progress.js';
import type { ProjectionState } from '../projections/runner.js';
import { expectFolded, logPositions, seed, sleep, type ProjectionSuite } from './projection-context.js';
import { expect } from './expect.js';

/** Inline projections, and async runners catching up, tailing, resuming and waiting. */
export function describeLiveCases<Ctx>(suite: ProjectionSuite<Ctx>): void {
  if (suite.inline) describeInlineCase(suite);
  describeAsyncCases(suite);
}

function describeInlineCase<Ctx>(suite: ProjectionSuite<Ctx>): void {
  suite.test('inline: the read model commits with the append, and a failing handler fails the append with nothing written', async () => {
    const f = await suite.fresh();
    let armed = true;
    const remove = await f.addInline(f.accounts({ failAt: { position: 4, armed: () => armed } }));
    await f.store.append('account-1', [{ type: 'Deposited', data: { amount: 10 } }], { expectedVersion: 'no-stream' });
    await f.store.append('account-2', [{ type: 'Deposited', data: { amount: 7 } }], { expectedVersion: 'no-stream' });
    await expectFolded(f);

    // Position 3 is applied by the handler before position 4 throws: its write must roll back too.
    const failing = f.store.appendMany([
      {
        streamId: 'account-1',
        events: [
          { type: 'Deposited', data: { amount: 5 } },
          { type: 'Withdrawn', data: { amount: 1 } },
        ],
        expectedVersion: 1,
      },
      { streamId: 'account-3', events: [{ type: 'Deposited', data: { amount: 1 } }], expectedVersion: 'no-stream' },
    ]);
    await expect(failing).rejects.toThrow(ProjectionHandlerError);
    await expect(failing).rejects.toThrow(/Withdrawn \(stream 'account-1', version 3, position 4\): boom at 4/);
    expect(await f.store.headPosition()).toBe(2);
    expect(await f.store.streamVersion('account-1')).toBe(1);
    expect(await f.store.streamVersion('account-3')).toBe(0);
    await expectFolded(f);
    expect((await f.readModel()).accounts.get('account-1')).toEqual({ balance: 10, events: 1, lastVersion: 1 });

    armed = false;
    await f.store.append('account-1', [{ type: 'Withdrawn', data: { amount: 5 } }], { expectedVersion: 1 });
    await expectFolded(f);
    expect((await f.readModel()).accounts.get('account-1')).toEqual({ balance: 5, events: 2, lastVersion: 2 });

    remove();
    await f.store.append('account-1', [{ type: 'Deposited', data: { amount: 4 } }], { expectedVersion: 2 });
    expect((await f.readModel()).accounts.get('account-1')).toEqual({ balance: 5, events: 2, lastVersion: 2 });
  });
}

function describeAsyncCases<Ctx>(suite: ProjectionSuite<Ctx>): void {
  suite.test('async: catches up in batches, then tails new appends woken by the store (not by polling)', async () => {
    const f = await suite.fresh();
    await seed(f.store, 300);
    const progress: ProjectionProgress[] = [];
    const states: ProjectionState[] = [];
    const runner = f.runner(f.accounts(), {
      batchSize: 50,
      pollIntervalMs: 60_000, // only the adapter's wake-up can make the live part pass in time
      progressIntervalMs: 0,
      onProgress: (p) => progress.push(p),
      onStatus: (s) => states.push(s.state),
    });
    await runner.start();
    await runner.waitUntilCaughtUp({ timeoutMs: suite.timeoutMs });
    await expectFolded(f);
    const at = await logPositions(f.store);
    expect(progress.at(-1)).toMatchObject({ phase: 'catch-up', processed: 300, position: at(300), done: true });
    expect(runner.checkpoint).toEqual({ position: at(300), version: 1 });
    expect(await f.checkpoints.load('accounts')).toEqual({ position: at(300), version: 1 });

    await expect.poll(() => runner.state).toBe('live');
    if (suite.wakeUpSettleMs !== undefined) await sleep(suite.wakeUpSettleMs);
    await seed(f.store, 17);
    await runner.waitUntilCaughtUp({ timeoutMs: 5_000 });
    await expectFolded(f);
    expect(runner.state).toBe('live');
    await runner.stop();
    expect(runner.state).toBe('stopped');
    expect(states).toEqual(['catching-up', 'live', 'stopping', 'stopped']);
  });

  suite.test('async: a new runner resumes from the checkpoint after stop, applying nothing twice', async () => {
    const f = await suite.fresh();
    await seed(f.store, 25);
    const first = f.runner(f.accounts(), { batchSize: 4 });
    await first.start();
    await first.waitUntilCaughtUp({ timeoutMs: suite.timeoutMs });
    await first.stop();
    await seed(f.store, 25);
    const second = f.runner(f.accounts(), { batchSize: 4 });
    await second.start();
    await second.waitUntilCaughtUp({ timeoutMs: suite.timeoutMs });
    await second.stop();
    expect(second.checkpoint).toEqual({ position: (await logPositions(f.store))(50), version: 1 });
    await expectFolded(f);
  });

  suite.test('async: waitUntilCaughtUp times out with a clear error, and rejects once the runner is stopped', async () => {
    const f = await suite.fresh();
    await seed(f.store, 3);
    const at = await logPositions(f.store);
    const runner = f.runner(f.accounts());
    await expect(runner.waitUntilCaughtUp({ timeoutMs: 20 })).rejects.toMatchObject({
      code: 'PROJECTION_TIMEOUT',
      message: `Projection 'accounts' did not reach position ${at(3)} within 20 ms (it is at 0).`,
    });
    await runner.start();
    await runner.waitUntilCaughtUp({ timeoutMs: suite.timeoutMs });
    await runner.stop();
    await seed(f.store, 1);
    await expect(runner.waitUntilCaughtUp()).rejects.toMatchObject({ code: 'PROJECTION_STOPPED' });
  });
}
