import { afterAll, describe, expect, it } from 'vitest';
import {
  BrokerUnavailableError,
  InMemoryCheckpointStore,
  InMemoryDeadLetterStore,
  InMemoryEventStore,
  inMemoryWakeUps,
  MessageRefusedError,
  OutboxRelay,
  silentLogger,
  Subscription,
  SubscriptionEventError,
  type StandaloneDeadLetterStore,
  type CheckpointStore,
  type EventStore,
  type RecordedEvent,
  type SubscriptionOptions,
  type WakeUpSource,
} from '../src/index.js';
import { PostgresCheckpointStore, PostgresDeadLetterStore, PostgresEventStore, PostgresProjectionLock, postgresWakeUps } from '../src/postgres/index.js';
import { SqliteCheckpointStore, SqliteDeadLetterStore, SqliteEventStore } from '../src/sqlite/index.js';
import { pgTestDatabase } from './support/postgres.js';

const db = pgTestDatabase();
afterAll(() => db.cleanup());

interface Setup {
  readonly store: EventStore;
  readonly checkpoints: CheckpointStore;
  readonly wakeUps: WakeUpSource;
  readonly extra: Partial<SubscriptionOptions>;
}

const setups: Record<string, () => Promise<Setup>> = {
  memory: async () => {
    const store = new InMemoryEventStore({ pageSize: 3 });
    return { store, checkpoints: new InMemoryCheckpointStore(), wakeUps: inMemoryWakeUps(store), extra: {} };
  },
  sqlite: async () => {
    const store = new SqliteEventStore({ path: ':memory:', pageSize: 3 });
    return { store, checkpoints: new SqliteCheckpointStore(store.database), wakeUps: (l) => store.onAppended(() => l()), extra: {} };
  },
  postgres: async () => {
    const schema = db.schema('subs');
    const store = await PostgresEventStore.create({ pool: db.pool, schema, pageSize: 3 });
    const checkpoints = new PostgresCheckpointStore(db.pool, schema);
    await checkpoints.migrate();
    return { store, checkpoints, wakeUps: postgresWakeUps(store), extra: { lock: new PostgresProjectionLock(db.pool, schema) } };
  },
};

const event = (type: string, n: number) => ({ type, data: { n } });

async function until(condition: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe.each(Object.keys(setups))('Subscription (%s)', (name) => {
  it('delivers the log in order, in batches of at most batchSize, catches up then tails; a restart resumes after its checkpoint', async () => {
    const s = await setups[name]!();
    for (let i = 1; i <= 10; i++) await s.store.append(`user-${i % 3}`, [event('Registered', i)], { expectedVersion: 'any' });
    const batches: RecordedEvent[][] = [];
    const options: SubscriptionOptions = {
      name: 'mailer',
      store: s.store,
      checkpoints: s.checkpoints,
      wakeUps: s.wakeUps,
      batchSize: 4,
      pollIntervalMs: 50,
      handle: (events) => void batches.push([...events]),
      ...s.extra,
    };
    const first = new Subscription(options);
    await first.start();
    await first.waitUntilCaughtUp({ timeoutMs: 20_000 });
    expect(batches.every((b) => b.length <= 4)).toBe(true);
    expect(batches.flat().map((e) => e.data)).toEqual(Array.from({ length: 10 }, (_, i) => ({ n: i + 1 })));
    await s.store.append('user-9', [event('Registered', 11)], { expectedVersion: 'any' });
    await until(() => batches.flat().length === 11);
    await first.stop();
    await s.store.append('user-9', [event('Registered', 12)], { expectedVersion: 'any' });
    const second = new Subscription(options);
    await second.start();
    await until(() => batches.flat().length === 12);
    await second.waitUntilCaughtUp({ timeoutMs: 20_000 });
    expect(batches.flat().map((e) => (e.data as { n: number }).n)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    await second.stop();
  });

  it("from 'end' sees only what is appended after its first start, and keeps that start across restarts", async () => {
    const s = await setups[name]!();
    await s.store.append('user-1', [event('Old', 1), event('Old', 2)], { expectedVersion: 'any' });
    const seen: number[] = [];
    const options: SubscriptionOptions = {
      name: 'from-end',
      store: s.store,
      checkpoints: s.checkpoints,
      wakeUps: s.wakeUps,
      from: 'end',
      pollIntervalMs: 50,
      handle: (events) => void seen.push(...events.map((e) => (e.data as { n: number }).n)),
      ...s.extra,
    };
    const sub = new Subscription(options);
    await sub.start();
    await sub.waitUntilCaughtUp({ timeoutMs: 20_000 });
    await s.store.append('user-1', [event('New', 3)], { expectedVersion: 'any' });
    await until(() => seen.length === 1);
    await sub.stop();
    const again = new Subscription({ ...options });
    await again.start();
    await s.store.append('user-1', [event('New', 4)], { expectedVersion: 'any' });
    await until(() => seen.length === 2);
    expect(seen).toEqual([3, 4]);
    await again.stop();
  });

  it('with a type and category filter gets only matching events, and its checkpoint still reaches the head', async () => {
    const s = await setups[name]!();
    for (let i = 1; i <= 12; i++) {
      await s.store.append(i % 2 === 0 ? `user-${i}` : `order-${i}`, [event(i % 3 === 0 ? 'Closed' : 'Opened', i)], { expectedVersion: 'any' });
    }
    const seen: RecordedEvent[] = [];
    const sub = new Subscription({
      name: 'filtered',
      store: s.store,
      checkpoints: s.checkpoints,
      wakeUps: s.wakeUps,
      filter: { types: ['Closed'], categories: ['user'] },
      pollIntervalMs: 50,
      handle: (events) => void seen.push(...events),
      ...s.extra,
    });
    await sub.start();
    await sub.waitUntilCaughtUp({ timeoutMs: 20_000 });
    expect(seen.map((e) => (e.data as { n: number }).n)).toEqual([6, 12]);
    expect(sub.checkpoint?.position).toBe(await s.store.headPosition());
    await sub.stop();
  });

  it('a transient fault of the handler (a broker outage) is reported and retried until it passes; nothing is skipped', async () => {
    const s = await setups[name]!();
    for (let i = 1; i <= 5; i++) await s.store.append('user-1', [event('E', i)], { expectedVersion: 'any' });
    let failures = 3;
    const delivered: number[] = [];
    const errors: string[] = [];
    const sub = new Subscription({
      name: 'flaky',
      store: s.store,
      checkpoints: s.checkpoints,
      retry: { initialDelayMs: 5, maxDelayMs: 20 },
      onError: (error, info) => void errors.push(`${error.name}:${info.transient}`),
      handle: (events) => {
        if (failures-- > 0) throw new BrokerUnavailableError('test', 'down');
        delivered.push(...events.map((e) => (e.data as { n: number }).n));
      },
      ...s.extra,
    });
    await sub.start();
    await sub.waitUntilCaughtUp({ timeoutMs: 20_000 });
    expect(delivered).toEqual([1, 2, 3, 4, 5]);
    expect(errors.length).toBeGreaterThanOrEqual(3);
    expect(errors.every((e) => e.endsWith(':true'))).toBe(true);
    await sub.stop();
  });
});

describe('Subscription poison events', () => {
  it("with poisonEvents 'park', the event the handler names is parked and the others are delivered", async () => {
    const store = new InMemoryEventStore();
    for (let i = 1; i <= 6; i++) await store.append('user-1', [event('E', i)], { expectedVersion: 'any' });
    const poison = (await store.readAll().toArray())[3]!;
    const delivered: number[] = [];
    const deadLetters = new InMemoryDeadLetterStore();
    const sub = new Subscription({
      name: 'parking',
      store,
      checkpoints: new InMemoryCheckpointStore(),
      deadLetters,
      poisonEvents: 'park',
      retry: { maxAttempts: 2, initialDelayMs: 1, maxDelayMs: 2 },
      logger: { debug() {}, info() {}, warn() {}, error() {} },
      handle: (events) => {
        const bad = events.find((e) => e.eventId === poison.eventId);
        if (bad !== undefined) throw new SubscriptionEventError(bad.eventId, { cause: new Error('refused') });
        delivered.push(...events.map((e) => (e.data as { n: number }).n));
      },
    });
    await sub.start();
    await sub.waitUntilCaughtUp({ timeoutMs: 20_000 });
    expect(delivered).toEqual([1, 2, 3, 5, 6]);
    const letters = await deadLetters.list('parking');
    expect(letters.map((l) => [l.eventId, l.error])).toEqual([[poison.eventId, 'refused']]);
    expect(sub.status.parked).toBe(1);
    await sub.stop();
  });
});

describe.each(['memory', 'sqlite', 'postgres'])('OutboxRelay parking a refused message (%s dead letters)', (kind) => {
  it("a message the broker refuses is parked with its reason, the relay goes on, and nothing is dropped silently", async () => {
    const store = new InMemoryEventStore();
    for (let i = 1; i <= 5; i++) await store.append(`order-${i}`, [event('Placed', i)], { expectedVersion: 'no-stream' });
    const refused = (await store.readAll().toArray())[2]!;
    let deadLetters: StandaloneDeadLetterStore;
    if (kind === 'memory') deadLetters = new InMemoryDeadLetterStore();
    else if (kind === 'sqlite') deadLetters = new SqliteDeadLetterStore(new SqliteEventStore({ path: ':memory:' }).database);
    else {
      const schema = db.schema('letters');
      await PostgresEventStore.create({ pool: db.pool, schema }); // the relay's source database
      deadLetters = new PostgresDeadLetterStore(db.pool, schema);
    }
    const published: string[] = [];
    const relay = new OutboxRelay({
      name: 'to-broker',
      store,
      checkpoints: new InMemoryCheckpointStore(),
      deadLetters,
      poisonEvents: 'park',
      retry: { maxAttempts: 2, initialDelayMs: 1, maxDelayMs: 2 },
      logger: silentLogger,
      broker: {
        name: 'strict',
        publish: async (events) => {
          if (events.some((e) => e.eventId === refused.eventId)) throw new MessageRefusedError('strict', [refused.eventId], 'unroutable');
          published.push(...events.map((e) => e.eventId));
        },
        close: async () => {},
      },
    });
    await relay.start();
    await relay.waitUntilCaughtUp({ timeoutMs: 20_000 });
    await relay.stop();
    const all = await store.readAll().toArray();
    expect(published).toEqual(all.filter((e) => e.eventId !== refused.eventId).map((e) => e.eventId));
    const letters = await deadLetters.list('to-broker');
    expect(letters.map((l) => l.eventId)).toEqual([refused.eventId]);
    expect(letters[0]!.error).toContain('unroutable');
  });
});
