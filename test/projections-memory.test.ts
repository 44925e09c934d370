import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, isEventfoldError } from '../src/errors.js';
import {
  addInlineProjection,
  AtLeastOnceTarget,
  defineProjection,
  InMemoryCheckpointStore,
  InMemoryProjectionRunner,
  InMemoryReadModel,
  ProjectionHandlerError,
  ProjectionLockedError,
  ProjectionRunner,
  type InMemoryProjectionContext,
  type ProjectionProgress,
  type ProjectionStatus,
} from '../src/projections/index.js';
import { InMemoryEventStore } from '../src/store/in-memory-event-store.js';
import { foldAccounts, planEvents, type AccountEvent, type AccountRow } from './fixtures/projection-model.js';

interface Options {
  readonly name?: string;
  readonly version?: number;
  /** Throws when the handler sees this position (while `armed()` says so). */
  readonly failAt?: { position: number; armed: () => boolean };
  readonly unknownEvents?: 'skip' | 'fail';
}

function accountsProjection(options: Options = {}) {
  const apply = (position: number, streamId: string, version: number, delta: number, { readModel }: InMemoryProjectionContext) => {
    if (options.failAt?.position === position && options.failAt.armed()) throw new Error(`boom at ${position}`);
    readModel.table<AccountRow>('accounts').upsert(streamId, (row) => ({
      balance: (row?.balance ?? 0) + delta,
      events: (row?.events ?? 0) + 1,
      lastVersion: version,
    }));
    readModel.table<number>('applied').upsert(String(position), (n) => (n ?? 0) + 1);
  };
  return defineProjection<AccountEvent, InMemoryProjectionContext>({
    name: options.name ?? 'accounts',
    version: options.version ?? 1,
    ...(options.unknownEvents === undefined ? {} : { unknownEvents: options.unknownEvents }),
    handlers: {
      Deposited: (e, ctx) => apply(e.position, e.streamId, e.version, e.data.amount, ctx),
      Withdrawn: (e, ctx) => apply(e.position, e.streamId, e.version, -e.data.amount, ctx),
    },
    reset: ({ readModel }) => {
      readModel.table('accounts').clear();
      readModel.table('applied').clear();
    },
  });
}

async function seed(store: InMemoryEventStore, count: number, streams = 3): Promise<void> {
  for (let i = 0; i < count; i++) {
    await store.append(`account-${i % streams}`, [{ type: i % 5 === 4 ? 'Withdrawn' : 'Deposited', data: { amount: i + 1 } }], {
      expectedVersion: 'any',
    });
  }
}

async function expectFolded(store: InMemoryEventStore, readModel: InMemoryReadModel): Promise<void> {
  const expected = foldAccounts(await store.readAll().toArray());
  const accounts = readModel.table<AccountRow>('accounts');
  expect(new Map(accounts.entries())).toEqual(expected.accounts);
  const applied = readModel.table<number>('applied');
  expect(applied.keys().map(Number).sort((a, b) => a - b)).toEqual(expected.applied);
  expect(applied.values().every((n) => n === 1)).toBe(true);
}

describe('defineProjection', () => {
  it('rejects bad definitions with InvalidArgumentError', () => {
    expect(() => defineProjection<AccountEvent, unknown>({ name: '', handlers: {} })).toThrow(InvalidArgumentError);
    expect(() => defineProjection<AccountEvent, unknown>({ name: 'x', version: 0, handlers: {} })).toThrow(/version/);
    expect(() => defineProjection<AccountEvent, unknown>({ name: 'x\n', handlers: {} })).toThrow(/control/);
    expect(() =>
      defineProjection<AccountEvent, unknown>({ name: 'x', handlers: { Deposited: 'nope' as never } }),
    ).toThrow(/Deposited/);
    expect(() =>
      defineProjection<AccountEvent, unknown>({ name: 'x', handlers: {}, unknownEvents: 'ignore' as never }),
    ).toThrow(/unknownEvents/);
  });

  it('only accepts handler keys of the event union (checked by tsc)', () => {
    const p = defineProjection<AccountEvent, unknown>({
      name: 'typed',
      handlers: {
        Deposited: (e) => {
          // e is narrowed: data.amount is a number.
          const n: number = e.data.amount;
          void n;
        },
        // @ts-expect-error — not an event type of the union
        Refunded: () => {},
      },
    });
    expect(p.version).toBe(1);
    expect(p.unknownEvents).toBe('skip');
  });
});

describe('InMemoryReadModel', () => {
  it('commits all writes of a transaction or none', () => {
    const model = new InMemoryReadModel();
    model.transaction((tx) => tx.table<number>('t').set('a', 1));
    expect(() =>
      model.transaction((tx) => {
        tx.table<number>('t').set('a', 2);
        tx.table<number>('t').set('b', 3);
        expect(tx.table<number>('t').get('a')).toBe(2);
        throw new Error('rollback');
      }),
    ).toThrow('rollback');
    expect(model.table<number>('t').entries()).toEqual([['a', 1]]);
    model.transaction((tx) => {
      tx.table('t').clear();
      tx.table<number>('t').set('c', 4);
      expect(tx.table('t').keys()).toEqual(['c']);
    });
    expect(model.table<number>('t').entries()).toEqual([['c', 4]]);
  });

  it('stores frozen copies, so callers cannot change committed rows behind its back', () => {
    const model = new InMemoryReadModel();
    const row = { n: 1 };
    model.transaction((tx) => tx.table('t').set('a', row));
    row.n = 2;
    const stored = model.table<{ n: number }>('t').get('a')!;
    expect(stored.n).toBe(1);
    expect(Object.isFrozen(stored)).toBe(true);
  });
});

describe('inline projections (in-memory)', () => {
  it('updates the read model in the append, and a failing handler fails the append with nothing written', async () => {
    const store = new InMemoryEventStore();
    const readModel = new InMemoryReadModel();
    let armed = true;
    const remove = addInlineProjection(store, accountsProjection({ failAt: { position: 3, armed: () => armed } }), readModel);
    await store.append('account-1', [{ type: 'Deposited', data: { amount: 10 } }], { expectedVersion: 'no-stream' });
    expect(readModel.table<AccountRow>('accounts').get('account-1')).toEqual({ balance: 10, events: 1, lastVersion: 1 });

    // A two-event append whose second event (position 3) fails: neither event nor any write stays.
    const failing = store.append(
      'account-1',
      [
        { type: 'Deposited', data: { amount: 5 } },
        { type: 'Withdrawn', data: { amount: 1 } },
      ],
      { expectedVersion: 1 },
    );
    await expect(failing).rejects.toThrow(ProjectionHandlerError);
    await expect(failing).rejects.toThrow(/Withdrawn \(stream 'account-1', version 3, position 3\)/);
    expect(await store.headPosition()).toBe(1);
    expect(readModel.table<AccountRow>('accounts').get('account-1')).toEqual({ balance: 10, events: 1, lastVersion: 1 });

    armed = false;
    await store.append('account-1', [{ type: 'Withdrawn', data: { amount: 4 } }], { expectedVersion: 1 });
    await expectFolded(store, readModel);
    remove();
    await store.append('account-1', [{ type: 'Deposited', data: { amount: 4 } }], { expectedVersion: 2 });
    expect(readModel.table<AccountRow>('accounts').get('account-1')?.events).toBe(2);
  });
});

describe('InMemoryProjectionRunner', () => {
  it('catches up, then tails new appends live', async () => {
    const store = new InMemoryEventStore({ pageSize: 7 });
    await seed(store, 40);
    const readModel = new InMemoryReadModel();
    const states: string[] = [];
    const runner = new InMemoryProjectionRunner(store, accountsProjection(), {
      readModel,
      batchSize: 5,
      pollIntervalMs: 60_000, // only the append wake-up can make the live test pass in time
      onStatus: (s) => states.push(s.state),
    });
    await runner.start();
    await runner.waitUntilCaughtUp({ timeoutMs: 5_000 });
    await expectFolded(store, readModel);
    expect(runner.checkpoint).toEqual({ position: 40, version: 1 });

    await seed(store, 9);
    await runner.waitUntilCaughtUp({ timeoutMs: 5_000 });
    await expectFolded(store, readModel);
    expect(runner.state).toBe('live');
    await runner.stop();
    expect(states).toEqual(['catching-up', 'live', 'stopping', 'stopped']);
  });

  it('waitUntilCaughtUp times out with a clear error, and rejects once the runner is stopped', async () => {
    const store = new InMemoryEventStore();
    await seed(store, 3);
    const runner = new InMemoryProjectionRunner(store, accountsProjection(), { readModel: new InMemoryReadModel() });
    await expect(runner.waitUntilCaughtUp({ timeoutMs: 20 })).rejects.toMatchObject({
      code: 'PROJECTION_TIMEOUT',
      message: "Projection 'accounts' did not reach position 3 within 20 ms (it is at 0).",
    });
    await runner.start();
    await runner.waitUntilCaughtUp();
    await runner.stop();
    await seed(store, 1);
    await expect(runner.waitUntilCaughtUp()).rejects.toMatchObject({ code: 'PROJECTION_STOPPED' });
  });

  it('resumes from its checkpoint after stop, applying nothing twice', async () => {
    const store = new InMemoryEventStore();
    const readModel = new InMemoryReadModel();
    await seed(store, 25);
    const first = new InMemoryProjectionRunner(store, accountsProjection(), { readModel, batchSize: 4 });
    await first.start();
    await first.waitUntilCaughtUp();
    await first.stop();
    await seed(store, 25);
    const second = new InMemoryProjectionRunner(store, accountsProjection(), { readModel, batchSize: 4 });
    await second.start();
    await second.waitUntilCaughtUp();
    await second.stop();
    await expectFolded(store, readModel);
  });

  it('retries a failing handler with backoff, commits the events before it, then stops naming the event', async () => {
    const store = new InMemoryEventStore();
    await seed(store, 10);
    const readModel = new InMemoryReadModel();
    const errors: { attempt: number; willRetry: boolean }[] = [];
    const runner = new InMemoryProjectionRunner(store, accountsProjection({ failAt: { position: 6, armed: () => true } }), {
      readModel,
      batchSize: 100,
      retry: { maxAttempts: 3, initialDelayMs: 1 },
      onError: (_error, info) => errors.push({ attempt: info.attempt, willRetry: info.willRetry }),
    });
    await runner.start();
    const caughtUp = runner.waitUntilCaughtUp();
    await expect(caughtUp).rejects.toThrow(ProjectionHandlerError);
    const status = await runner.whenStopped();
    expect(status.state).toBe('failed');
    const error = runner.error as ProjectionHandlerError;
    expect(isEventfoldError(error, 'PROJECTION_HANDLER_FAILED')).toBe(true);
    expect({ type: error.eventType, stream: error.streamId, version: error.version, position: error.position, attempts: error.attempts }).toEqual({
      type: 'Deposited',
      stream: 'account-2',
      version: 2,
      position: 6,
      attempts: 3,
    });
    expect(error.message).toMatch(/position 6\) after 3 attempts: boom at 6/);
    expect(errors).toEqual([
      { attempt: 1, willRetry: true },
      { attempt: 2, willRetry: true },
      { attempt: 3, willRetry: false },
    ]);
    // Everything before the failing event is applied; nothing after it, nothing skipped.
    expect(runner.checkpoint?.position).toBe(5);
    expect(readModel.table('applied').keys().map(Number).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5]);
  });

  it('recovers when a handler fails only transiently', async () => {
    const store = new InMemoryEventStore();
    await seed(store, 12);
    const readModel = new InMemoryReadModel();
    let failures = 0;
    const runner = new InMemoryProjectionRunner(
      store,
      accountsProjection({ failAt: { position: 8, armed: () => failures++ < 2 } }),
      { readModel, retry: { maxAttempts: 3, initialDelayMs: 1 } },
    );
    await runner.start();
    await runner.waitUntilCaughtUp({ timeoutMs: 5_000 });
    await runner.stop();
    expect(failures).toBe(3);
    await expectFolded(store, readModel);
  });

  it("with unknownEvents: 'fail', stops at an event that has no handler", async () => {
    const store = new InMemoryEventStore();
    await seed(store, 2);
    await store.append('account-9', [{ type: 'Noted', data: { text: 'hi' } }], { expectedVersion: 'any' });
    const runner = new InMemoryProjectionRunner(store, accountsProjection({ unknownEvents: 'fail' }), {
      readModel: new InMemoryReadModel(),
      retry: { maxAttempts: 1 },
      onError: () => {},
    });
    await runner.start();
    await expect(runner.waitUntilCaughtUp()).rejects.toThrow(/Noted \(stream 'account-9', version 1, position 3\).*no handler/);
  });

  it('refuses handlers that return promises in a synchronous read model', async () => {
    const store = new InMemoryEventStore();
    await seed(store, 1);
    const projection = defineProjection<AccountEvent, InMemoryProjectionContext>({
      name: 'async-handler',
      handlers: { Deposited: async () => {} },
    });
    const runner = new InMemoryProjectionRunner(store, projection, {
      readModel: new InMemoryReadModel(),
      retry: { maxAttempts: 1 },
      onError: () => {},
    });
    await runner.start();
    await expect(runner.waitUntilCaughtUp()).rejects.toThrow(/returned a promise/);
  });

  it('lets only one runner process a projection; the second takes over when the first stops', async () => {
    const store = new InMemoryEventStore();
    await seed(store, 10);
    const readModel = new InMemoryReadModel();
    const seenBy: string[] = [];
    const tracking = (who: string) =>
      defineProjection<AccountEvent, InMemoryProjectionContext>({
        name: 'accounts',
        handlers: {
          Deposited: (e, ctx) => {
            seenBy.push(who);
            accountsProjection().handlers.Deposited!(e, ctx);
          },
          Withdrawn: (e, ctx) => {
            seenBy.push(who);
            accountsProjection().handlers.Withdrawn!(e, ctx);
          },
        },
      });
    const a = new InMemoryProjectionRunner(store, tracking('a'), { readModel, lockRetryMs: 10 });
    const b = new InMemoryProjectionRunner(store, tracking('b'), { readModel, lockRetryMs: 10 });
    await a.start();
    await b.start();
    expect(b.state).toBe('waiting-for-lock');
    await a.waitUntilCaughtUp();
    expect(new Set(seenBy)).toEqual(new Set(['a']));

    const strict = new InMemoryProjectionRunner(store, tracking('c'), { readModel, whenLocked: 'fail' });
    await expect(strict.start()).rejects.toThrow(ProjectionLockedError);

    await a.stop();
    await seed(store, 5);
    await b.waitUntilCaughtUp({ timeoutMs: 5_000 });
    expect(seenBy.slice(10)).toEqual(['b', 'b', 'b', 'b', 'b']);
    await b.stop();
    await expectFolded(store, readModel);
  });

  it('rebuilds with progress, and rebuilds by itself when the version changes', async () => {
    const store = new InMemoryEventStore({ pageSize: 50 });
    await seed(store, 300);
    const readModel = new InMemoryReadModel();
    const first = new InMemoryProjectionRunner(store, accountsProjection(), { readModel });
    await first.start();
    await first.waitUntilCaughtUp();
    // Damage the read model, as a buggy handler would have: a rebuild repairs it.
    readModel.transaction((tx) => tx.table<AccountRow>('accounts').set('account-0', { balance: -1, events: 0, lastVersion: 0 }));
    const progress: ProjectionProgress[] = [];
    await first.stop();
    const rebuilder = new InMemoryProjectionRunner(store, accountsProjection(), {
      readModel,
      batchSize: 10,
      progressIntervalMs: 0,
      onProgress: (p) => progress.push(p),
    });
    await rebuilder.rebuild();
    await expectFolded(store, readModel);
    await rebuilder.stop();
    const rebuild = progress.filter((p) => p.phase === 'rebuild');
    expect(rebuild[0]).toMatchObject({ processed: 0, position: 0, headPosition: 300, done: false, reason: 'requested' });
    expect(rebuild.at(-1)).toMatchObject({ processed: 300, position: 300, done: true, ratio: 1, estimatedMsLeft: 0 });
    expect(rebuild.length).toBeGreaterThanOrEqual(30);
    const mid = rebuild.find((p) => p.position === 150)!;
    expect(mid.ratio).toBe(0.5);
    expect(mid.eventsPerSecond).toBeGreaterThan(0);
    expect(mid.estimatedMsLeft).toBeGreaterThanOrEqual(0);

    // Version 2 of the projection: the stored checkpoint says version 1, so it rebuilds on start.
    readModel.transaction((tx) => tx.table('applied').set('999', 1));
    const reasons: (string | undefined)[] = [];
    const v2 = new InMemoryProjectionRunner(store, accountsProjection({ version: 2 }), {
      readModel,
      onProgress: (p) => reasons.push(p.reason),
    });
    await v2.start();
    await v2.waitUntilCaughtUp();
    await v2.stop();
    expect(reasons).toContain('version-changed');
    expect(v2.checkpoint).toEqual({ position: 300, version: 2 });
    await expectFolded(store, readModel);
  });

  it('property: crashes at any event, restarts — the read model is the fold, each event applied once', async () => {
    const eventArb = fc.record({
      stream: fc.integer({ min: 0, max: 3 }),
      kind: fc.constantFrom(0 as const, 1 as const, 2 as const),
      amount: fc.integer({ min: 1, max: 100 }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(eventArb, { minLength: 1, maxLength: 40 }),
        fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 4 }),
        fc.integer({ min: 1, max: 9 }),
        async (kinds, crashes, batchSize) => {
          const store = new InMemoryEventStore({ pageSize: 6 });
          for (const plan of planEvents(kinds)) await store.append(plan.streamId, plan.events, { expectedVersion: 'any' });
          const readModel = new InMemoryReadModel();
          // Each crash point kills one runner (handler throws, no retry); a fresh runner resumes.
          for (const position of crashes) {
            let armed = true;
            const runner = new InMemoryProjectionRunner(
              store,
              accountsProjection({ failAt: { position, armed: () => armed } }),
              { readModel, batchSize, retry: { maxAttempts: 1 }, onError: () => {} },
            );
            await runner.start();
            await runner.waitUntilCaughtUp().catch(() => undefined);
            armed = false;
            await runner.stop();
          }
          const last = new InMemoryProjectionRunner(store, accountsProjection(), { readModel, batchSize });
          await last.start();
          await last.waitUntilCaughtUp();
          await last.stop();
          await expectFolded(store, readModel);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('ProjectionRunner with an at-least-once target', () => {
  it('saves the checkpoint after the handlers and resumes from it', async () => {
    const store = new InMemoryEventStore();
    await seed(store, 20);
    const checkpoints = new InMemoryCheckpointStore();
    const external = new Map<string, number>();
    const projection = defineProjection<AccountEvent, Map<string, number>>({
      name: 'external',
      handlers: { Deposited: (e, index) => void index.set(e.eventId, e.data.amount) },
    });
    const statuses: ProjectionStatus[] = [];
    const runner = new ProjectionRunner({
      store,
      projection,
      target: new AtLeastOnceTarget({ checkpoints, context: () => external }),
      lock: { tryAcquire: async () => ({ onLost: () => {}, release: async () => {} }) },
      onStatus: (s) => statuses.push(s),
    });
    await runner.start();
    await runner.waitUntilCaughtUp();
    await runner.stop();
    expect(await checkpoints.load('external')).toEqual({ position: 20, version: 1 });
    expect(external.size).toBe(16);
    expect(statuses.at(-1)?.state).toBe('stopped');
  });
});
