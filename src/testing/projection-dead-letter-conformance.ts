import { afterEach, describe, expect, it } from 'vitest';
import { isEventfoldError } from '../errors.js';
import type { RecordedEvent } from '../events/types.js';
import type { CheckpointStore } from '../projections/checkpoint-store.js';
import type { Projection } from '../projections/projection.js';
import { readProjectionStatus } from '../projections/status.js';
import type { ProjectionErrorInfo, ProjectionRunner, ProjectionRunnerSettings } from '../projections/runner.js';
import type { EventStore } from '../store/event-store.js';

/**
 * What the dead-letter suite needs of a projection conformance fixture (the accounts read model;
 * see `ProjectionConformanceFixture`, which fits).
 */
export interface DeadLetterConformanceFixture<Ctx> {
  readonly store: EventStore;
  /** The adapter's checkpoint store over the runners' storage. */
  readonly checkpoints: CheckpointStore;
  accounts(options?: { readonly failAt?: { readonly position: number; readonly armed: () => boolean } }): Projection<never, Ctx>;
  runner(projection: Projection<never, Ctx>, settings?: ProjectionRunnerSettings): ProjectionRunner<never, Ctx>;
  readModel():
    | { readonly accounts: ReadonlyMap<string, unknown>; readonly applied: readonly { readonly position: number }[] }
    | Promise<{ readonly accounts: ReadonlyMap<string, unknown>; readonly applied: readonly { readonly position: number }[] }>;
  close(): void | Promise<void>;
}

interface AccountRow {
  readonly balance: number;
  readonly events: number;
  readonly lastVersion: number;
}

function fold(events: readonly RecordedEvent[]): { accounts: Map<string, AccountRow>; applied: number[] } {
  const accounts = new Map<string, AccountRow>();
  const applied: number[] = [];
  for (const e of events) {
    if (e.type !== 'Deposited' && e.type !== 'Withdrawn') continue;
    const amount = (e.data as { amount: number }).amount;
    const row = accounts.get(e.streamId) ?? { balance: 0, events: 0, lastVersion: 0 };
    accounts.set(e.streamId, {
      balance: row.balance + (e.type === 'Deposited' ? amount : -amount),
      events: row.events + 1,
      lastVersion: e.version,
    });
    applied.push(e.position);
  }
  return { accounts, applied };
}

/** Appends `count` events over account-0..3: Deposited, every 5th Withdrawn, every 7th Noted. */
async function seed(store: EventStore, count: number): Promise<void> {
  const start = await store.headPosition();
  for (let j = start; j < start + count; j++) {
    const type = j % 5 === 4 ? 'Withdrawn' : j % 7 === 6 ? 'Noted' : 'Deposited';
    await store.append(`account-${j % 4}`, [{ type, data: { amount: j + 1, text: 'x' } }], { expectedVersion: 'any' });
  }
}

/** Positions 1–20 ordinary, 21 the poison event (the only event of account-poison), 22–31 ordinary. */
async function seedWithPoison(store: EventStore): Promise<RecordedEvent> {
  await seed(store, 20);
  await store.append('account-poison', [{ type: 'Deposited', data: { amount: 1000 } }], { expectedVersion: 'no-stream' });
  await seed(store, 10);
  const [poison] = await store.readAll({ fromPosition: 21, limit: 1 }).toArray();
  expect(poison).toMatchObject({ position: 21, streamId: 'account-poison' });
  return poison!;
}

/**
 * The dead-letter part of the projection conformance suite: with `poisonEvents: 'park'` a poison
 * event is parked (checkpoint past it, the rest applied) and the runner carries on; the parked
 * event can be listed, retried (applied once it succeeds, kept with its attempts when it fails
 * again) and discarded; nothing is ever skipped silently.
 */
export function describeProjectionDeadLetterConformance<Ctx>(
  name: string,
  createFixture: () => DeadLetterConformanceFixture<Ctx> | Promise<DeadLetterConformanceFixture<Ctx>>,
  options: {
    readonly timeoutMs?: number;
    /** False for runners whose read model keeps no dead letters: the suite then checks that 'park' is refused. Default true. */
    readonly deadLetters?: boolean;
  } = {},
): void {
  const timeoutMs = options.timeoutMs ?? 20_000;

  if (options.deadLetters === false) {
    describe(`${name} — projection dead letters (declared unsupported)`, () => {
      it("refuses poisonEvents 'park' with InvalidArgumentError, so no event can be parked where nobody can see it", async () => {
        const f = await createFixture();
        try {
          expect(() => f.runner(f.accounts(), { poisonEvents: 'park' })).toThrow(/keeps none|dead letters/);
        } finally {
          await f.close();
        }
      });
    });
    return;
  }

  describe(`${name} — projection dead letters`, () => {
    const open: { fixture: DeadLetterConformanceFixture<Ctx>; runners: ProjectionRunner<never, Ctx>[] }[] = [];
    afterEach(async () => {
      for (const entry of open.splice(0)) {
        for (const runner of entry.runners) await runner.stop().catch(() => undefined);
        await entry.fixture.close();
      }
    });
    const fresh = async (): Promise<{ f: DeadLetterConformanceFixture<Ctx>; run: (p: Projection<never, Ctx>, s?: ProjectionRunnerSettings) => ProjectionRunner<never, Ctx> }> => {
      const f = await createFixture();
      const entry = { fixture: f, runners: [] as ProjectionRunner<never, Ctx>[] };
      open.push(entry);
      return {
        f,
        run: (projection, settings) => {
          const runner = f.runner(projection, settings);
          entry.runners.push(runner);
          return runner;
        },
      };
    };
    const expectFoldOf = async (f: DeadLetterConformanceFixture<Ctx>, keep: (e: RecordedEvent) => boolean): Promise<void> => {
      const expected = fold((await f.store.readAll().toArray()).filter(keep));
      const actual = await f.readModel();
      expect(new Map(actual.accounts)).toEqual(expected.accounts);
      expect(actual.applied.map((row) => row.position)).toEqual(expected.applied);
    };

    it("parks a poison event with poisonEvents 'park': checkpoint past it, everything else applied, listed with its failure", async () => {
      const { f, run } = await fresh();
      const poison = await seedWithPoison(f.store);
      const errors: ProjectionErrorInfo[] = [];
      const runner = run(f.accounts({ failAt: { position: 21, armed: () => true } }), {
        batchSize: 7,
        poisonEvents: 'park',
        retry: { maxAttempts: 2, initialDelayMs: 1 },
        onError: (_error, info) => errors.push(info),
      });
      await runner.start();
      await runner.waitUntilCaughtUp({ timeoutMs });
      expect(runner.state).not.toBe('failed');
      expect(runner.checkpoint).toEqual({ position: 31, version: 1 });
      await expectFoldOf(f, (e) => e.position !== 21);
      expect(errors.map((e) => [e.attempt, e.willRetry, e.transient])).toEqual([
        [1, true, false],
        [2, false, false],
      ]);
      const deadLetters = runner.deadLetters!;
      expect(await deadLetters.count('accounts')).toBe(1);
      const [letter, ...rest] = await deadLetters.list('accounts');
      expect(rest).toEqual([]);
      expect(letter).toMatchObject({
        projection: 'accounts',
        position: 21,
        eventId: poison.eventId,
        eventType: 'Deposited',
        streamId: 'account-poison',
        streamVersion: 1,
        error: 'boom at 21',
        attempts: 2,
        retryRequested: false,
      });
      expect(letter!.parkedAt).toBeInstanceOf(Date);
      expect(runner.status).toMatchObject({ parked: 1, position: 31, lag: 0 });
      expect(await deadLetters.list('accounts', { afterPosition: 21 })).toEqual([]);
      expect(await deadLetters.count('other')).toBe(0);
      await runner.stop();

      // A new runner resumes after the parked event: it neither re-applies nor re-parks anything.
      const again = run(f.accounts(), { poisonEvents: 'park' });
      await again.start();
      await again.waitUntilCaughtUp({ timeoutMs });
      await again.stop();
      expect(await deadLetters.count('accounts')).toBe(1);
      await expectFoldOf(f, (e) => e.position !== 21);
    });

    it('retry applies a parked event once its handler succeeds; the read model then equals the full fold', async () => {
      const { f, run } = await fresh();
      await seedWithPoison(f.store);
      let armed = true;
      const runner = run(f.accounts({ failAt: { position: 21, armed: () => armed } }), {
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
      expect(await deadLetters.retry('accounts', 21)).toBe(true);
      await expect.poll(() => deadLetters.count('accounts'), { timeout: timeoutMs }).toBe(0);
      await expectFoldOf(f, () => true);
      await expect.poll(() => runner.status.parked, { timeout: timeoutMs }).toBe(0);
      expect(runner.checkpoint).toEqual({ position: 31, version: 1 });
    });

    it('a retry that fails again keeps the event parked with its attempts and error; discard drops it for good', async () => {
      const { f, run } = await fresh();
      await seedWithPoison(f.store);
      const runner = run(f.accounts({ failAt: { position: 21, armed: () => true } }), {
        poisonEvents: 'park',
        pollIntervalMs: 20,
        retry: { maxAttempts: 2, initialDelayMs: 1 },
        onError: () => {},
      });
      await runner.start();
      await runner.waitUntilCaughtUp({ timeoutMs });
      const deadLetters = runner.deadLetters!;
      expect(await deadLetters.retry('accounts', 21)).toBe(true);
      await expect
        .poll(async () => (await deadLetters.list('accounts')).map((l) => [l.attempts, l.retryRequested, l.error]), { timeout: timeoutMs })
        .toEqual([[3, false, 'boom at 21']]);
      await expectFoldOf(f, (e) => e.position !== 21);
      expect(await deadLetters.discard('accounts', 21)).toBe(true);
      expect(await deadLetters.discard('accounts', 21)).toBe(false);
      expect(await deadLetters.count('accounts')).toBe(0);
      await seed(f.store, 5);
      await runner.waitUntilCaughtUp({ timeoutMs });
      await expectFoldOf(f, (e) => e.position !== 21);
    });

    it('a rebuild replays parked events too, so their letters go with the old read model', async () => {
      const { f, run } = await fresh();
      await seedWithPoison(f.store);
      let armed = true;
      const runner = run(f.accounts({ failAt: { position: 21, armed: () => armed } }), {
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
      await expectFoldOf(f, () => true);
    });

    it('status from storage: position, lag and parked count without a running runner; checkpoints listed', async () => {
      const { f, run } = await fresh();
      await seedWithPoison(f.store);
      const runner = run(f.accounts({ failAt: { position: 21, armed: () => true } }), {
        poisonEvents: 'park',
        retry: { maxAttempts: 1 },
        onError: () => {},
      });
      await runner.start();
      await runner.waitUntilCaughtUp({ timeoutMs });
      await runner.stop();
      await seed(f.store, 4);
      const sources = { store: f.store, checkpoints: f.checkpoints, deadLetters: runner.deadLetters! };
      expect(await readProjectionStatus(sources, 'accounts')).toEqual({
        projection: 'accounts',
        position: 31,
        version: 1,
        headPosition: 35,
        lag: 4,
        parked: 1,
      });
      expect(await readProjectionStatus(sources, 'never-ran')).toMatchObject({ position: 0, version: undefined, lag: 35, parked: 0 });
      if (f.checkpoints.list !== undefined) {
        expect(await f.checkpoints.list()).toEqual([{ projection: 'accounts', position: 31, version: 1 }]);
      }
    });

    it("with the default poisonEvents 'stop' nothing is parked, and bad dead-letter arguments are refused", async () => {
      const { f, run } = await fresh();
      await seedWithPoison(f.store);
      const runner = run(f.accounts({ failAt: { position: 21, armed: () => true } }), { retry: { maxAttempts: 1 }, onError: () => {} });
      await runner.start();
      await expect(runner.waitUntilCaughtUp({ timeoutMs })).rejects.toMatchObject({ code: 'PROJECTION_HANDLER_FAILED', position: 21 });
      expect(runner.checkpoint?.position).toBe(20);
      const deadLetters = runner.deadLetters;
      if (deadLetters !== undefined) {
        expect(await deadLetters.count('accounts')).toBe(0);
        await expect(deadLetters.list('accounts', { limit: 0 })).rejects.toSatisfy((e: unknown) => isEventfoldError(e, 'INVALID_ARGUMENT'));
        await expect(deadLetters.retry('accounts', -1)).rejects.toSatisfy((e: unknown) => isEventfoldError(e, 'INVALID_ARGUMENT'));
        await expect(deadLetters.discard('', 1)).rejects.toSatisfy((e: unknown) => isEventfoldError(e, 'INVALID_ARGUMENT'));
      }
      expect(() => f.runner(f.accounts(), { poisonEvents: 'skip' as never })).toThrow(/poisonEvents must be 'stop' or 'park'/);
    });
  });
}
