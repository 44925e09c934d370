import { isEventfoldError } from '../errors.js';
import { ProjectionHandlerError } from '../projections/errors.js';
import { expectFolded, expectFoldOf, logPositions, seed, type ProjectionSuite } from './projection-context.js';
import { expect } from './expect.js';

/** Failing handlers (retried, then stopping at the event) and events without a handler. */
export function describeFailureCases<Ctx>(suite: ProjectionSuite<Ctx>): void {
  suite.test('async: retries a failing handler with backoff, then stops naming the event, checkpoint and read model just before it', async () => {
    const f = await suite.fresh();
    await seed(f.store, 120);
    const at = await logPositions(f.store);
    const failing = (await f.store.readAll({ fromPosition: at(77), limit: 1 }).toArray())[0]!;
    expect(failing.type).toBe('Deposited');
    const attempts: { attempt: number; willRetry: boolean }[] = [];
    const runner = f.runner(f.accounts({ failAt: { position: at(77), armed: () => true } }), {
      batchSize: 30,
      retry: { maxAttempts: 3, initialDelayMs: 1 },
      onError: (_error, info) => attempts.push({ attempt: info.attempt, willRetry: info.willRetry }),
    });
    await runner.start();
    const caughtUp = runner.waitUntilCaughtUp({ timeoutMs: suite.timeoutMs });
    await expect(caughtUp).rejects.toThrow(ProjectionHandlerError);
    await expect(caughtUp).rejects.toThrow(
      `Projection 'accounts' failed on event Deposited (stream '${failing.streamId}', version ${failing.version}, ` +
        `position ${at(77)}) after 3 attempts: boom at ${at(77)}. The runner stopped`,
    );
    const status = await runner.whenStopped();
    expect(status).toMatchObject({ state: 'failed', position: at(76) });
    expect(runner.state).toBe('failed');
    const error = runner.error as ProjectionHandlerError;
    expect(isEventfoldError(error, 'PROJECTION_HANDLER_FAILED')).toBe(true);
    expect({ type: error.eventType, stream: error.streamId, version: error.version, position: error.position, attempts: error.attempts }).toEqual({
      type: 'Deposited',
      stream: failing.streamId,
      version: failing.version,
      position: at(77),
      attempts: 3,
    });
    expect(error.eventId).toBe(failing.eventId);
    expect(attempts).toEqual([
      { attempt: 1, willRetry: true },
      { attempt: 2, willRetry: true },
      { attempt: 3, willRetry: false },
    ]);
    // Everything before the failing event is applied; nothing after it, nothing skipped.
    expect(runner.checkpoint?.position).toBe(at(76));
    expect(await f.checkpoints.load('accounts')).toEqual({ position: at(76), version: 1 });
    await expectFoldOf(f, (await f.store.readAll().toArray()).filter((e) => e.position <= at(76)));
  });

  suite.test('async: recovers when a handler fails only transiently', async () => {
    const f = await suite.fresh();
    await seed(f.store, 12);
    const at = await logPositions(f.store);
    expect((await f.store.readAll({ fromPosition: at(9), limit: 1 }).toArray())[0]?.type).toBe('Deposited');
    let failures = 0;
    const runner = f.runner(f.accounts({ failAt: { position: at(9), armed: () => failures++ < 2 } }), {
      retry: { maxAttempts: 3, initialDelayMs: 1 },
      onError: () => {},
    });
    await runner.start();
    await runner.waitUntilCaughtUp({ timeoutMs: suite.timeoutMs });
    await runner.stop();
    expect(failures).toBe(3);
    await expectFolded(f);
  });

  suite.test("async: unknownEvents 'skip' passes events without a handler, 'fail' stops at the first one", async () => {
    const f = await suite.fresh();
    await seed(f.store, 2);
    await f.store.append('account-9', [{ type: 'Noted', data: { text: 'hi' } }], { expectedVersion: 'any' });
    await seed(f.store, 2);
    const at = await logPositions(f.store);

    const strict = f.runner(f.accounts({ unknownEvents: 'fail' }), { retry: { maxAttempts: 1 }, onError: () => {} });
    await strict.start();
    const caughtUp = strict.waitUntilCaughtUp({ timeoutMs: suite.timeoutMs });
    await expect(caughtUp).rejects.toThrow(ProjectionHandlerError);
    await expect(caughtUp).rejects.toThrow(new RegExp(`Noted \\(stream 'account-9', version 1, position ${at(3)}\\).*no handler`));
    expect(await strict.whenStopped()).toMatchObject({ state: 'failed', position: at(2) });
    await expectFoldOf(f, (await f.store.readAll().toArray()).filter((e) => e.position <= at(2)));

    const lenient = f.runner(f.accounts({ unknownEvents: 'skip' }));
    await lenient.start();
    await lenient.waitUntilCaughtUp({ timeoutMs: suite.timeoutMs });
    await lenient.stop();
    expect(lenient.checkpoint).toEqual({ position: at(5), version: 1 });
    await expectFolded(f);
  });
}
