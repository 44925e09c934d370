import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { Event, RecordedEvent } from '../events/types.js';
import type { CheckpointStore } from '../projections/checkpoint-store.js';
import { CheckpointConflictError, ProjectionHandlerError, ProjectionLockedError } from '../projections/errors.js';
import type { Projection, UnknownEventPolicy } from '../projections/projection.js';
import type { ProjectionProgress } from '../projections/progress.js';
import type { ProjectionRunner, ProjectionRunnerSettings, ProjectionState } from '../projections/runner.js';
import type { EventStore } from '../store/event-store.js';
import { isEventfoldError } from '../errors.js';
import { describeProjectionDeadLetterConformance } from './projection-dead-letter-conformance.js';

export type AccountDeposited = Event<'Deposited', { amount: number }>;
export type AccountWithdrawn = Event<'Withdrawn', { amount: number }>;
/** An event the accounts projection has no handler for. */
export type AccountNoted = Event<'Noted', { text: string }>;
export type AccountEvent = AccountDeposited | AccountWithdrawn | AccountNoted;

export interface AccountRow {
  readonly balance: number;
  readonly events: number;
  readonly lastVersion: number;
}

/** One row of the `applied` table: the position of an event a handler applied, and by which runner. */
export interface AppliedRow {
  readonly position: number;
  readonly runner: string;
}

/** The accounts read model as read back from the adapter's storage. */
export interface AccountsReadModel {
  readonly accounts: ReadonlyMap<string, AccountRow>;
  /** Every applied row (duplicates included), ordered by position then runner. */
  readonly applied: readonly AppliedRow[];
}

/** What a correct accounts projection must end with: the plain left fold over the log. */
export interface AccountsFold {
  readonly accounts: Map<string, AccountRow>;
  /** Positions of the events the handlers applied (`Noted` has no handler). */
  readonly applied: number[];
}

export function foldAccounts(events: readonly RecordedEvent[]): AccountsFold {
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

/** One append: a stream and its events, as the property generates them. */
export interface PlannedAppend {
  readonly streamId: string;
  readonly events: readonly AccountEvent[];
}

export function planEvents(kinds: readonly { stream: number; kind: 0 | 1 | 2; amount: number }[]): PlannedAppend[] {
  return kinds.map(({ stream, kind, amount }) => ({
    streamId: `account-${stream}`,
    events: [
      kind === 0
        ? { type: 'Deposited', data: { amount } }
        : kind === 1
          ? { type: 'Withdrawn', data: { amount } }
          : { type: 'Noted', data: { text: `note ${amount}` } },
    ] as AccountEvent[],
  }));
}

export interface AccountsProjectionOptions {
  /** Default 'accounts'. */
  readonly name?: string;
  /** Default 1. */
  readonly version?: number;
  /** Passed through to `defineProjection` when set. */
  readonly unknownEvents?: UnknownEventPolicy;
  /** The handler throws `new Error('boom at <position>')`, before writing, at this position while `armed()`. */
  readonly failAt?: { readonly position: number; readonly armed: () => boolean };
  /** Stored as `runner` in every applied row, to tell runners apart. Default ''. */
  readonly runnerId?: string;
}

/**
 * What an adapter differs in. `accounts(options)` must define the accounts projection in the
 * adapter's context type: handlers for `Deposited` / `Withdrawn` that upsert the stream's row
 * (balance ± amount, events + 1, lastVersion = event version) and add an applied row
 * (position, runnerId); `setup` creating its storage if the adapter needs it; `reset` emptying both.
 */
export interface ProjectionConformanceFixture<Ctx> {
  /** A fresh, empty event store. */
  readonly store: EventStore;
  /** Where this adapter's runners keep their checkpoints (the same storage the runners use). */
  readonly checkpoints: CheckpointStore;
  accounts(options?: AccountsProjectionOptions): Projection<AccountEvent, Ctx>;
  /** A new async runner of `projection` over `store`, its read model and its checkpoints. */
  runner(projection: Projection<AccountEvent, Ctx>, settings?: ProjectionRunnerSettings): ProjectionRunner<AccountEvent, Ctx>;
  /** Installs `projection` inline (in every append's transaction); resolves to the remover. */
  addInline(projection: Projection<AccountEvent, Ctx>): (() => void) | Promise<() => void>;
  readModel(): AccountsReadModel | Promise<AccountsReadModel>;
  /**
   * Damages the read model behind the runner's back, as a buggy handler would: sets account-1's
   * balance to -1 and adds an applied row at position 999999.
   */
  damage(): void | Promise<void>;
  /** Closes the store and frees what the fixture holds (runners are stopped by the suite first). */
  close(): void | Promise<void>;
}

export type ProjectionConformanceFactory<Ctx> = () => ProjectionConformanceFixture<Ctx> | Promise<ProjectionConformanceFixture<Ctx>>;

export interface ProjectionConformanceOptions {
  /** fast-check runs of the crash/restart property. Default 25. */
  readonly propertyRuns?: number;
  /**
   * How long to wait after a runner turns live before relying on its wake-up alone (e.g. a
   * PostgreSQL runner sets up LISTEN right after taking the lock). Default 0.
   */
  readonly wakeUpSettleMs?: number;
  /** Timeout of a catch-up or rebuild in the tests. Default 20,000 ms. */
  readonly timeoutMs?: number;
  /** False when the adapter's runners keep no dead letters (then `poisonEvents: 'park'` must be refused). Default true. */
  readonly deadLetters?: boolean;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Appends `count` events (Deposited, every 5th Withdrawn, every 7th Noted) over `streams` streams, ten per appendMany. */
async function seed(store: EventStore, count: number, streams = 4): Promise<void> {
  const start = await store.headPosition();
  for (let i = start; i < start + count; i += 10) {
    const byStream = new Map<string, { type: string; data: unknown }[]>();
    for (let j = i; j < Math.min(i + 10, start + count); j++) {
      const type = j % 5 === 4 ? 'Withdrawn' : j % 7 === 6 ? 'Noted' : 'Deposited';
      const streamId = `account-${j % streams}`;
      byStream.set(streamId, [...(byStream.get(streamId) ?? []), { type, data: { amount: j + 1, text: 'x' } }]);
    }
    await store.appendMany([...byStream].map(([streamId, events]) => ({ streamId, events, expectedVersion: 'any' as const })));
  }
}

type Readable = Pick<ProjectionConformanceFixture<unknown>, 'store' | 'readModel'>;

async function expectFoldOf(fixture: Readable, events: readonly RecordedEvent[]): Promise<void> {
  const expected = foldAccounts(events);
  const actual = await fixture.readModel();
  expect(new Map(actual.accounts)).toEqual(expected.accounts);
  // Positions in order, duplicates included: each handled event applied exactly once.
  expect(actual.applied.map((row) => row.position)).toEqual(expected.applied);
}

async function expectFolded(fixture: Readable): Promise<void> {
  await expectFoldOf(fixture, await fixture.store.readAll().toArray());
}

/**
 * The conformance suite of projections, run against every adapter (the in-memory one included)
 * with the same "accounts" read model: inline projections commit and fail with the append;
 * async runners catch up and tail live appends (woken by the adapter, not by polling), resume from
 * their checkpoint, stop on a failing handler naming the event with the checkpoint just before it,
 * skip or fail on unknown events, rebuild with progress (also on a version bump), let one runner
 * at a time process a projection, refuse a stale checkpoint, and — a fast-check property — end
 * with the read model equal to the fold, each event applied once, whatever crashes happened.
 */
export function describeProjectionConformance<Ctx>(
  name: string,
  createFixture: ProjectionConformanceFactory<Ctx>,
  options: ProjectionConformanceOptions = {},
): void {
  const timeoutMs = options.timeoutMs ?? 20_000;

  describe(`${name} — projection conformance`, () => {
    const open: { fixture: ProjectionConformanceFixture<Ctx>; runners: ProjectionRunner<AccountEvent, Ctx>[] }[] = [];

    /** A fresh fixture whose runners are tracked, so a failed test still stops them before closing. */
    const fresh = async (): Promise<ProjectionConformanceFixture<Ctx>> => {
      const fixture = await createFixture();
      const entry = { fixture, runners: [] as ProjectionRunner<AccountEvent, Ctx>[] };
      open.push(entry);
      return {
        ...fixture,
        accounts: (o) => fixture.accounts(o),
        addInline: (p) => fixture.addInline(p),
        readModel: () => fixture.readModel(),
        damage: () => fixture.damage(),
        close: () => fixture.close(),
        runner: (projection, settings) => {
          const runner = fixture.runner(projection, settings);
          entry.runners.push(runner);
          return runner;
        },
      };
    };
    const release = async (fixture: ProjectionConformanceFixture<Ctx>): Promise<void> => {
      const index = open.findIndex((entry) => entry.fixture.store === fixture.store);
      const [entry] = index >= 0 ? open.splice(index, 1) : [];
      if (entry === undefined) return;
      for (const runner of entry.runners) await runner.stop().catch(() => undefined);
      await entry.fixture.close();
    };
    afterEach(async () => {
      for (const entry of [...open]) await release(entry.fixture);
    });

    it('inline: the read model commits with the append, and a failing handler fails the append with nothing written', async () => {
      const f = await fresh();
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

    it('async: catches up in batches, then tails new appends woken by the store (not by polling)', async () => {
      const f = await fresh();
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
      await runner.waitUntilCaughtUp({ timeoutMs });
      await expectFolded(f);
      expect(progress.at(-1)).toMatchObject({ phase: 'catch-up', processed: 300, position: 300, done: true });
      expect(runner.checkpoint).toEqual({ position: 300, version: 1 });
      expect(await f.checkpoints.load('accounts')).toEqual({ position: 300, version: 1 });

      await expect.poll(() => runner.state).toBe('live');
      if (options.wakeUpSettleMs !== undefined) await sleep(options.wakeUpSettleMs);
      await seed(f.store, 17);
      await runner.waitUntilCaughtUp({ timeoutMs: 5_000 });
      await expectFolded(f);
      expect(runner.state).toBe('live');
      await runner.stop();
      expect(runner.state).toBe('stopped');
      expect(states).toEqual(['catching-up', 'live', 'stopping', 'stopped']);
    });

    it('async: a new runner resumes from the checkpoint after stop, applying nothing twice', async () => {
      const f = await fresh();
      await seed(f.store, 25);
      const first = f.runner(f.accounts(), { batchSize: 4 });
      await first.start();
      await first.waitUntilCaughtUp({ timeoutMs });
      await first.stop();
      await seed(f.store, 25);
      const second = f.runner(f.accounts(), { batchSize: 4 });
      await second.start();
      await second.waitUntilCaughtUp({ timeoutMs });
      await second.stop();
      expect(second.checkpoint).toEqual({ position: 50, version: 1 });
      await expectFolded(f);
    });

    it('async: waitUntilCaughtUp times out with a clear error, and rejects once the runner is stopped', async () => {
      const f = await fresh();
      await seed(f.store, 3);
      const runner = f.runner(f.accounts());
      await expect(runner.waitUntilCaughtUp({ timeoutMs: 20 })).rejects.toMatchObject({
        code: 'PROJECTION_TIMEOUT',
        message: "Projection 'accounts' did not reach position 3 within 20 ms (it is at 0).",
      });
      await runner.start();
      await runner.waitUntilCaughtUp({ timeoutMs });
      await runner.stop();
      await seed(f.store, 1);
      await expect(runner.waitUntilCaughtUp()).rejects.toMatchObject({ code: 'PROJECTION_STOPPED' });
    });

    it('async: retries a failing handler with backoff, then stops naming the event, checkpoint and read model just before it', async () => {
      const f = await fresh();
      await seed(f.store, 120);
      const failing = (await f.store.readAll({ fromPosition: 77, limit: 1 }).toArray())[0]!;
      expect(failing.type).toBe('Deposited');
      const attempts: { attempt: number; willRetry: boolean }[] = [];
      const runner = f.runner(f.accounts({ failAt: { position: 77, armed: () => true } }), {
        batchSize: 30,
        retry: { maxAttempts: 3, initialDelayMs: 1 },
        onError: (_error, info) => attempts.push({ attempt: info.attempt, willRetry: info.willRetry }),
      });
      await runner.start();
      const caughtUp = runner.waitUntilCaughtUp({ timeoutMs });
      await expect(caughtUp).rejects.toThrow(ProjectionHandlerError);
      await expect(caughtUp).rejects.toThrow(
        `Projection 'accounts' failed on event Deposited (stream '${failing.streamId}', version ${failing.version}, ` +
          `position 77) after 3 attempts: boom at 77. The runner stopped`,
      );
      const status = await runner.whenStopped();
      expect(status).toMatchObject({ state: 'failed', position: 76 });
      expect(runner.state).toBe('failed');
      const error = runner.error as ProjectionHandlerError;
      expect(isEventfoldError(error, 'PROJECTION_HANDLER_FAILED')).toBe(true);
      expect({ type: error.eventType, stream: error.streamId, version: error.version, position: error.position, attempts: error.attempts }).toEqual({
        type: 'Deposited',
        stream: failing.streamId,
        version: failing.version,
        position: 77,
        attempts: 3,
      });
      expect(error.eventId).toBe(failing.eventId);
      expect(attempts).toEqual([
        { attempt: 1, willRetry: true },
        { attempt: 2, willRetry: true },
        { attempt: 3, willRetry: false },
      ]);
      // Everything before the failing event is applied; nothing after it, nothing skipped.
      expect(runner.checkpoint?.position).toBe(76);
      expect(await f.checkpoints.load('accounts')).toEqual({ position: 76, version: 1 });
      await expectFoldOf(f, (await f.store.readAll().toArray()).filter((e) => e.position <= 76));
    });

    it('async: recovers when a handler fails only transiently', async () => {
      const f = await fresh();
      await seed(f.store, 12);
      expect((await f.store.readAll({ fromPosition: 9, limit: 1 }).toArray())[0]?.type).toBe('Deposited');
      let failures = 0;
      const runner = f.runner(f.accounts({ failAt: { position: 9, armed: () => failures++ < 2 } }), {
        retry: { maxAttempts: 3, initialDelayMs: 1 },
        onError: () => {},
      });
      await runner.start();
      await runner.waitUntilCaughtUp({ timeoutMs });
      await runner.stop();
      expect(failures).toBe(3);
      await expectFolded(f);
    });

    it("async: unknownEvents 'skip' passes events without a handler, 'fail' stops at the first one", async () => {
      const f = await fresh();
      await seed(f.store, 2);
      await f.store.append('account-9', [{ type: 'Noted', data: { text: 'hi' } }], { expectedVersion: 'any' });
      await seed(f.store, 2);

      const strict = f.runner(f.accounts({ unknownEvents: 'fail' }), { retry: { maxAttempts: 1 }, onError: () => {} });
      await strict.start();
      const caughtUp = strict.waitUntilCaughtUp({ timeoutMs });
      await expect(caughtUp).rejects.toThrow(ProjectionHandlerError);
      await expect(caughtUp).rejects.toThrow(/Noted \(stream 'account-9', version 1, position 3\).*no handler/);
      expect(await strict.whenStopped()).toMatchObject({ state: 'failed', position: 2 });
      await expectFoldOf(f, (await f.store.readAll().toArray()).filter((e) => e.position <= 2));

      const lenient = f.runner(f.accounts({ unknownEvents: 'skip' }));
      await lenient.start();
      await lenient.waitUntilCaughtUp({ timeoutMs });
      await lenient.stop();
      expect(lenient.checkpoint).toEqual({ position: 5, version: 1 });
      await expectFolded(f);
    });

    it('async: only one runner processes a projection; another waits (or fails when told to) and takes over on stop', async () => {
      const f = await fresh();
      await seed(f.store, 200);
      const a = f.runner(f.accounts({ runnerId: 'a' }), { lockRetryMs: 20 });
      const b = f.runner(f.accounts({ runnerId: 'b' }), { lockRetryMs: 20 });
      await a.start();
      await b.start();
      expect(b.state).toBe('waiting-for-lock');
      await a.waitUntilCaughtUp({ timeoutMs });
      await expect(f.runner(f.accounts({ runnerId: 'c' }), { whenLocked: 'fail' }).start()).rejects.toThrow(ProjectionLockedError);
      expect(new Set((await f.readModel()).applied.map((row) => row.runner))).toEqual(new Set(['a']));
      await a.stop();
      await seed(f.store, 20);
      await b.waitUntilCaughtUp({ timeoutMs });
      await b.stop();
      const expected = foldAccounts(await f.store.readAll().toArray());
      const byA = expected.applied.filter((p) => p <= 200);
      const applied = (await f.readModel()).applied;
      expect(applied.filter((row) => row.runner === 'a').map((row) => row.position)).toEqual(byA);
      expect(applied.filter((row) => row.runner === 'b').map((row) => row.position)).toEqual(expected.applied.filter((p) => p > 200));
      expect(applied.every((row) => row.runner === 'a' || row.runner === 'b')).toBe(true);
      await expectFolded(f);
    });

    it('async: rebuilds with progress, and rebuilds by itself when the version changes', async () => {
      const f = await fresh();
      await seed(f.store, 400);
      const first = f.runner(f.accounts(), { batchSize: 100 });
      await first.start();
      await first.waitUntilCaughtUp({ timeoutMs });
      await first.stop();
      await f.damage();

      const progress: ProjectionProgress[] = [];
      const rebuilder = f.runner(f.accounts(), { batchSize: 40, progressIntervalMs: 0, onProgress: (p) => progress.push(p) });
      await rebuilder.rebuild({ timeoutMs });
      await rebuilder.stop();
      await expectFolded(f);
      const rebuild = progress.filter((p) => p.phase === 'rebuild');
      expect(rebuild).toEqual(progress); // a rebuild of a runner that was never started reports only rebuild progress
      expect(rebuild.map((p) => [p.position, p.done])).toEqual([
        ...[0, 40, 80, 120, 160, 200, 240, 280, 320, 360, 400].map((position) => [position, false]),
        [400, true],
      ]);
      expect(rebuild[0]).toMatchObject({ processed: 0, position: 0, headPosition: 400, done: false, reason: 'requested' });
      expect(rebuild.at(-1)).toMatchObject({ processed: 400, position: 400, headPosition: 400, done: true, ratio: 1, estimatedMsLeft: 0 });
      const mid = rebuild.find((p) => p.position === 200)!;
      expect(mid.ratio).toBe(0.5);
      expect(mid.eventsPerSecond).toBeGreaterThan(0);
      expect(mid.estimatedMsLeft).toBeGreaterThanOrEqual(0);

      // Version 2: the stored checkpoint says version 1, so the runner resets and rebuilds on start.
      await f.damage();
      const v2 = f.runner(f.accounts({ version: 2 }), { onProgress: (p) => progress.push(p) });
      await v2.start();
      await v2.waitUntilCaughtUp({ timeoutMs });
      await v2.stop();
      expect(progress.at(-1)).toMatchObject({ phase: 'rebuild', reason: 'version-changed', done: true, processed: 400 });
      expect(v2.checkpoint).toEqual({ position: 400, version: 2 });
      expect(await f.checkpoints.load('accounts')).toEqual({ position: 400, version: 2 });
      await expectFolded(f);
    });

    it('checkpoints: a stale writer whose expected checkpoint moved cannot save (compare-and-set), nothing is written', async () => {
      const f = await fresh();
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

    it('property: crashes inside or between batches, restarts — the read model is the fold, each event applied once', async () => {
      const eventArb = fc.record({
        stream: fc.integer({ min: 0, max: 3 }),
        kind: fc.constantFrom(0 as const, 1 as const, 2 as const),
        amount: fc.integer({ min: 1, max: 100 }),
      });
      await fc.assert(
        fc.asyncProperty(
          fc.array(eventArb, { minLength: 1, maxLength: 60 }),
          fc.array(fc.record({ at: fc.integer({ min: 1, max: 60 }), stopAfter: fc.boolean() }), { maxLength: 4 }),
          fc.integer({ min: 1, max: 16 }),
          async (kinds, crashes, batchSize) => {
            const f = await fresh();
            try {
              for (const plan of planEvents(kinds)) await f.store.append(plan.streamId, plan.events, { expectedVersion: 'any' });
              for (const crash of crashes) {
                let armed = true;
                // Either a handler throws at position `at` (a crash inside a batch: its writes roll
                // back), or the runner is stopped once its checkpoint passes `at` (between batches).
                const runner = f.runner(f.accounts({ failAt: { position: crash.at, armed: () => armed && !crash.stopAfter } }), {
                  batchSize,
                  retry: { maxAttempts: 1 },
                  onError: () => {},
                });
                await runner.start();
                if (crash.stopAfter) {
                  while (runner.state !== 'live' && (runner.checkpoint?.position ?? 0) < crash.at) {
                    await new Promise((resolve) => setImmediate(resolve));
                  }
                } else {
                  await runner.waitUntilCaughtUp({ timeoutMs }).catch(() => undefined);
                }
                armed = false;
                await runner.stop();
              }
              const last = f.runner(f.accounts(), { batchSize });
              await last.start();
              await last.waitUntilCaughtUp({ timeoutMs });
              await last.stop();
              await expectFolded(f);
            } finally {
              await release(f);
            }
          },
        ),
        { numRuns: options.propertyRuns ?? 25 },
      );
    });
  });

  // Dead letters (poisonEvents: 'park'): every runner is held to them too.
  describeProjectionDeadLetterConformance(name, createFixture, {
    timeoutMs,
    ...(options.deadLetters === undefined ? {} : { deadLetters: options.deadLetters }),
  });
}
