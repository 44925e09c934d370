import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../src/errors.js';
import {
  addInlineProjection,
  AtLeastOnceTarget,
  defineProjection,
  InMemoryCheckpointStore,
  InMemoryDeadLetterStore,
  InMemoryProjectionRunner,
  InMemoryReadModel,
  ProjectionRunner,
  type InMemoryProjectionContext,
  type ProjectionStatus,
} from '../src/projections/index.js';
import { InMemoryEventStore } from '../src/store/in-memory-event-store.js';
import { describeProjectionConformance } from '../src/testing/projection-conformance.js';
import { damageMemoryAccounts, memoryAccountsProjection, readMemoryAccounts } from './fixtures/projection-memory-accounts.js';
import type { AccountEvent } from './fixtures/projection-model.js';

async function seed(store: InMemoryEventStore, count: number, streams = 3): Promise<void> {
  for (let i = 0; i < count; i++) {
    await store.append(`account-${i % streams}`, [{ type: i % 5 === 4 ? 'Withdrawn' : 'Deposited', data: { amount: i + 1 } }], {
      expectedVersion: 'any',
    });
  }
}

// Everything a durable adapter also does (inline, catch-up, live tail, failures, rebuild, locking,
// the crash property) runs from the shared suite; this file keeps what is in-memory specific.
describeProjectionConformance(
  'InMemory',
  () => {
    const store = new InMemoryEventStore({ pageSize: 7 });
    const readModel = new InMemoryReadModel();
    const checkpoints = new InMemoryCheckpointStore();
    return {
      store,
      checkpoints,
      accounts: (options) => memoryAccountsProjection(options),
      runner: (projection, settings) => new InMemoryProjectionRunner(store, projection, { ...settings, readModel, checkpoints }),
      addInline: (projection) => addInlineProjection(store, projection, readModel),
      readModel: () => readMemoryAccounts(readModel),
      damage: () => damageMemoryAccounts(readModel),
      close: () => store.close(),
    };
  },
  { framework: { describe, it }, propertyRuns: 60 },
);

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

describe('InMemoryProjectionRunner', () => {
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

  it("parks a poison event in the dead-letter store it is given, and refuses 'park' without one", async () => {
    const store = new InMemoryEventStore();
    await seed(store, 10);
    const checkpoints = new InMemoryCheckpointStore();
    const deadLetters = new InMemoryDeadLetterStore();
    const external = new Map<string, number>();
    const projection = defineProjection<AccountEvent, Map<string, number>>({
      name: 'external',
      handlers: {
        Deposited: (e, index) => {
          if (e.position === 4) throw new Error('poison');
          index.set(e.eventId, e.data.amount);
        },
      },
    });
    const lock = { tryAcquire: async () => ({ onLost: () => {}, release: async () => {} }) };
    expect(
      () =>
        new ProjectionRunner({ store, projection, target: new AtLeastOnceTarget({ checkpoints, context: () => external }), lock, poisonEvents: 'park' }),
    ).toThrow(/keeps none/);
    const runner = new ProjectionRunner({
      store,
      projection,
      target: new AtLeastOnceTarget({ checkpoints, deadLetters, context: () => external }),
      lock,
      poisonEvents: 'park',
      retry: { maxAttempts: 1 },
      onError: () => {},
    });
    await runner.start();
    await runner.waitUntilCaughtUp();
    await runner.stop();
    expect(await checkpoints.load('external')).toEqual({ position: 10, version: 1 });
    expect((await deadLetters.list('external')).map((l) => [l.position, l.error])).toEqual([[4, 'poison']]);
    expect(external.size).toBe(7);
  });
});
