import { isEventfoldError } from '../errors.js';
import type { RecordedEvent } from '../events/types.js';
import type { ProjectionErrorInfo } from '../projections/runner.js';
import { readProjectionStatus } from '../projections/status.js';
import type { EventStore } from '../store/event-store.js';
import { expect } from './expect.js';
import { expectFoldOf, logPositions, type ProjectionSuite } from './projection-context.js';
import type { ProjectionConformanceFixture } from './projection-model.js';

/** Appends `count` events over account-0..3, one per append: Deposited, every 5th Withdrawn, every 7th Noted. */
async function seedOneByOne(store: EventStore, count: number): Promise<void> {
  const start = await store.headPosition();
  for (let j = start; j < start + count; j++) {
    const type = j % 5 === 4 ? 'Withdrawn' : j % 7 === 6 ? 'Noted' : 'Deposited';
    await store.append(`account-${j % 4}`, [{ type, data: { amount: j + 1, text: 'x' } }], { expectedVersion: 'any' });
  }
}

/** Events 1–20 ordinary, 21 the poison event (the only event of account-poison), 22–31 ordinary. */
async function seedWithPoison(store: EventStore): Promise<RecordedEvent> {
  await seedOneByOne(store, 20);
  await store.append('account-poison', [{ type: 'Deposited', data: { amount: 1000 } }], { expectedVersion: 'no-stream' });
  await seedOneByOne(store, 10);
  const poison = (await store.readAll().toArray())[20];
  expect(poison).toMatchObject({ streamId: 'account-poison', version: 1 });
  return poison!;
}

async function foldWithout<Ctx>(f: ProjectionConformanceFixture<Ctx>, position: number | undefined): Promise<void> {
  await expectFoldOf(f, (await f.store.readAll().toArray()).filter((e) => e.position !== position));
}

const isInvalidArgument = (e: unknown): boolean => isEventfoldError(e, 'INVALID_ARGUMENT');

/**
 * Dead letters (`poisonEvents: 'park'`): a poison event is parked with the checkpoint past it and
 * the runner carries on; parked events are listed, retried (applied once the handler succeeds,
 * kept with their attempts when it fails again) and discarded; a rebuild clears them; status is
 * readable from storage. Nothing is ever skipped silently.
 */
export function describeDeadLetterCases<Ctx>(suite: ProjectionSuite<Ctx>): void {
  const timeoutMs = suite.timeoutMs;

  suite.test("dead letters: with poisonEvents 'park' a poison event is parked, checkpoint past it, the rest applied, listed with its failure", async () => {
    const f = await suite.fresh();
    const poison = await seedWithPoison(f.store);
    const at = await logPositions(f.store);
    const errors: ProjectionErrorInfo[] = [];
    const runner = f.runner(f.accounts({ failAt: { position: poison.position, armed: () => true } }), {
      batchSize: 7,
      poisonEvents: 'park',
      retry: { maxAttempts: 2, initialDelayMs: 1 },
      onError: (_error, info) => errors.push(info),
    });
    await runner.start();
    await runner.waitUntilCaughtUp({ timeoutMs });
    expect(runner.state).not.toBe('failed');
    expect(runner.checkpoint).toEqual({ position: at(31), version: 1 });
    await foldWithout(f, poison.position);
    expect(errors.map((e) => [e.attempt, e.willRetry, e.transient])).toEqual([
      [1, true, false],
      [2, false, false],
    ]);
    const deadLetters = runner.deadLetters!;
    expect(await deadLetters.count('accounts')).toBe(1);
    const letters = await deadLetters.list('accounts');
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({
      projection: 'accounts',
      position: poison.position,
      eventId: poison.eventId,
      eventType: 'Deposited',
      streamId: 'account-poison',
      streamVersion: 1,
      error: `boom at ${poison.position}`,
      attempts: 2,
      retryRequested: false,
    });
    expect(letters[0]!.parkedAt).toBeInstanceOf(Date);
    expect(runner.status).toMatchObject({ parked: 1, position: at(31), lag: 0 });
    expect(await deadLetters.list('accounts', { afterPosition: poison.position })).toEqual([]);
    expect(await deadLetters.count('other')).toBe(0);
    await runner.stop();

    // A new runner resumes after the parked event: it neither re-applies nor re-parks anything.
    const again = f.runner(f.accounts(), { poisonEvents: 'park' });
    await again.start();
    await again.waitUntilCaughtUp({ timeoutMs });
    await again.stop();
    expect(await deadLetters.count('accounts')).toBe(1);
    await foldWithout(f, poison.position);
  });

  suite.test('dead letters: retry applies a parked event once its handler succeeds; the read model then equals the full fold', async () => {
    const f = await suite.fresh();
    const poison = await seedWithPoison(f.store);
    const at = await logPositions(f.store);
    let armed = true;
    const runner = f.runner(f.accounts({ failAt: { position: poison.position, armed: () => armed } }), {
      poisonEvents: 'park',
      pollIntervalMs: 20,
      retry: { maxAttempts: 1 },
      onError: () => {},
    });
    await runner.start();
    await runner.waitUntilCaughtUp({ timeoutMs });
    const deadLetters = runner.deadLetters!;
    expect(await deadLetters.count('accounts')).toBe(1);
    expect(await deadLetters.retry('accounts', 999)).toBe(false);
    armed = false;
    expect(await deadLetters.retry('accounts', poison.position)).toBe(true);
    await expect.poll(() => deadLetters.count('accounts'), { timeout: timeoutMs }).toBe(0);
    await foldWithout(f, undefined);
    await expect.poll(() => runner.status.parked, { timeout: timeoutMs }).toBe(0);
    expect(runner.checkpoint).toEqual({ position: at(31), version: 1 });
  });

  suite.test('dead letters: a retry that fails again keeps the event parked with attempts and error; discard drops it for good', async () => {
    const f = await suite.fresh();
    const poison = await seedWithPoison(f.store);
    const runner = f.runner(f.accounts({ failAt: { position: poison.position, armed: () => true } }), {
      poisonEvents: 'park',
      pollIntervalMs: 20,
      retry: { maxAttempts: 2, initialDelayMs: 1 },
      onError: () => {},
    });
    await runner.start();
    await runner.waitUntilCaughtUp({ timeoutMs });
    const deadLetters = runner.deadLetters!;
    expect(await deadLetters.retry('accounts', poison.position)).toBe(true);
    const state = async (): Promise<string> =>
      JSON.stringify((await deadLetters.list('accounts')).map((l) => [l.attempts, l.retryRequested, l.error]));
    await expect.poll(state, { timeout: timeoutMs }).toBe(JSON.stringify([[3, false, `boom at ${poison.position}`]]));
    await foldWithout(f, poison.position);
    expect(await deadLetters.discard('accounts', poison.position)).toBe(true);
    expect(await deadLetters.discard('accounts', poison.position)).toBe(false);
    expect(await deadLetters.count('accounts')).toBe(0);
    await seedOneByOne(f.store, 5);
    await runner.waitUntilCaughtUp({ timeoutMs });
    await foldWithout(f, poison.position);
  });

  suite.test('dead letters: a rebuild replays parked events too, so their letters go with the old read model', async () => {
    const f = await suite.fresh();
    const poison = await seedWithPoison(f.store);
    let armed = true;
    const runner = f.runner(f.accounts({ failAt: { position: poison.position, armed: () => armed } }), {
      poisonEvents: 'park',
      retry: { maxAttempts: 1 },
      onError: () => {},
    });
    await runner.start();
    await runner.waitUntilCaughtUp({ timeoutMs });
    expect(await runner.deadLetters!.count('accounts')).toBe(1);
    armed = false;
    await runner.rebuild({ timeoutMs });
    expect(await runner.deadLetters!.count('accounts')).toBe(0);
    expect(runner.status.parked).toBe(0);
    await foldWithout(f, undefined);
  });

  suite.test('dead letters: status from storage (position, lag, parked) without a running runner; checkpoints listed', async () => {
    const f = await suite.fresh();
    const poison = await seedWithPoison(f.store);
    const at = await logPositions(f.store);
    const runner = f.runner(f.accounts({ failAt: { position: poison.position, armed: () => true } }), {
      poisonEvents: 'park',
      retry: { maxAttempts: 1 },
      onError: () => {},
    });
    await runner.start();
    await runner.waitUntilCaughtUp({ timeoutMs });
    await runner.stop();
    await seedOneByOne(f.store, 4);
    const head = (await logPositions(f.store))(35);
    const sources = { store: f.store, checkpoints: f.checkpoints, deadLetters: runner.deadLetters! };
    expect(await readProjectionStatus(sources, 'accounts')).toEqual({
      projection: 'accounts',
      position: at(31),
      version: 1,
      headPosition: head,
      lag: head - at(31),
      parked: 1,
    });
    expect(await readProjectionStatus(sources, 'never-ran')).toMatchObject({ position: 0, lag: head, parked: 0 });
    if (f.checkpoints.list !== undefined) {
      expect(await f.checkpoints.list()).toEqual([{ projection: 'accounts', position: at(31), version: 1 }]);
    }
  });

  suite.test("dead letters: the default poisonEvents 'stop' parks nothing; bad arguments are refused", async () => {
    const f = await suite.fresh();
    const poison = await seedWithPoison(f.store);
    const at = await logPositions(f.store);
    const runner = f.runner(f.accounts({ failAt: { position: poison.position, armed: () => true } }), { retry: { maxAttempts: 1 }, onError: () => {} });
    await runner.start();
    await expect(runner.waitUntilCaughtUp({ timeoutMs })).rejects.toMatchObject({ code: 'PROJECTION_HANDLER_FAILED', position: poison.position });
    expect(runner.checkpoint?.position).toBe(at(20));
    const deadLetters = runner.deadLetters!;
    expect(await deadLetters.count('accounts')).toBe(0);
    await expect(deadLetters.list('accounts', { limit: 0 })).rejects.toSatisfy(isInvalidArgument);
    await expect(deadLetters.retry('accounts', -1)).rejects.toSatisfy(isInvalidArgument);
    await expect(deadLetters.discard('', 1)).rejects.toSatisfy(isInvalidArgument);
    expect(() => f.runner(f.accounts(), { poisonEvents: 'skip' as never })).toThrow(/poisonEvents must be 'stop' or 'park'/);
  });
}
