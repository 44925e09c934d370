import { afterAll, describe, expect, it } from 'vitest';
import { AtLeastOnceTarget, InvalidArgumentError, ProjectionRunner, defineProjection } from '../src/index.js';
import { newDeadLetter } from '../src/projections/dead-letters.js';
import { NatsCheckpointStore, NatsDeadLetterStore, NatsProjectionLock, type NatsEventStore } from '../src/nats/index.js';
import type { AccountEvent } from './fixtures/projection-model.js';
import { natsStores } from './support/nats.js';

/** Parked events in JetStream KV, beside the checkpoints and the lease, against the real server. */
const stores = natsStores('dlq');
afterAll(() => stores.cleanup());

async function seed(store: NatsEventStore): Promise<void> {
  for (let i = 1; i <= 20; i++) {
    const event = i % 5 === 0 ? { type: 'Withdrawn', data: { amount: i } } : { type: 'Deposited', data: { amount: i } };
    await store.append(`acct-${i % 3}`, [event], { expectedVersion: 'any' });
  }
}

describe('NatsDeadLetterStore', () => {
  it('parks poison events of an at-least-once runner, retries them through the running runner, and discards', async () => {
    const store = await stores.create();
    await seed(store);
    const bucket = stores.bucket('dl');
    const connection = store.connection;
    const checkpoints = new NatsCheckpointStore({ connection, bucket, storage: 'memory' });
    const deadLetters = new NatsDeadLetterStore({ connection, bucket, storage: 'memory' });
    const balances = new Map<string, number>();
    const seen = new Set<string>();
    const broken = new Set<number>([10, 15]);
    const apply = (id: string, stream: string, delta: number): void => {
      if (seen.has(id)) return;
      seen.add(id);
      balances.set(stream, (balances.get(stream) ?? 0) + delta);
    };
    const projection = defineProjection<AccountEvent, unknown>({
      name: 'balances',
      handlers: {
        Deposited: (e) => apply(e.eventId, e.streamId, e.data.amount),
        Withdrawn: (e) => {
          if (broken.has(e.data.amount)) throw new Error(`cannot withdraw ${e.data.amount}`);
          apply(e.eventId, e.streamId, -e.data.amount);
        },
      },
    });
    const runner = new ProjectionRunner({
      store,
      projection,
      target: new AtLeastOnceTarget({ checkpoints, context: () => undefined, deadLetters }),
      lock: new NatsProjectionLock({ connection, bucket, storage: 'memory' }),
      poisonEvents: 'park',
      retry: { maxAttempts: 2, initialDelayMs: 5, maxDelayMs: 20 },
      pollIntervalMs: 50,
      onError: () => undefined,
    });
    const expected = async (skipAmounts: readonly number[]) => {
      const totals = new Map<string, number>();
      for (const e of await store.readAll().toArray()) {
        const amount = (e.data as { amount: number }).amount;
        if (e.type === 'Withdrawn' && skipAmounts.includes(amount)) continue;
        totals.set(e.streamId, (totals.get(e.streamId) ?? 0) + (e.type === 'Withdrawn' ? -amount : amount));
      }
      return Object.fromEntries(totals);
    };
    try {
      await runner.start();
      await runner.waitUntilCaughtUp({ timeoutMs: 30_000 });
      expect(Object.fromEntries(balances)).toEqual(await expected([10, 15]));
      expect(await deadLetters.count('balances')).toBe(2);
      const letters = await deadLetters.list('balances');
      expect(letters.map((l) => [l.eventType, l.error, l.attempts, l.retryRequested])).toEqual([
        ['Withdrawn', 'cannot withdraw 10', 2, false],
        ['Withdrawn', 'cannot withdraw 15', 2, false],
      ]);
      const events = await store.readAll().toArray();
      const tenth = events.find((e) => e.type === 'Withdrawn' && (e.data as { amount: number }).amount === 10)!;
      expect(letters[0]).toMatchObject({ position: tenth.position, eventId: tenth.eventId, streamId: tenth.streamId, streamVersion: tenth.version });
      expect(await deadLetters.list('balances', { afterPosition: tenth.position })).toHaveLength(1);
      expect(await deadLetters.list('balances', { limit: 1 })).toHaveLength(1);
      // The letters share the bucket with the checkpoint and the lease, unseen by either.
      expect((await checkpoints.list()).map((c) => c.projection)).toEqual(['balances']);

      // Retried while still broken: the runner tries again, the mark is cleared, attempts grow.
      expect(await deadLetters.retry('balances', tenth.position)).toBe(true);
      await expect
        .poll(async () => (await deadLetters.list('balances'))[0], { timeout: 20_000, interval: 50 })
        .toMatchObject({ retryRequested: false, attempts: 3 });

      // Fixed: a retry applies it and clears the letter.
      broken.delete(10);
      expect(await deadLetters.retry('balances', tenth.position)).toBe(true);
      await expect.poll(() => deadLetters.count('balances'), { timeout: 20_000, interval: 50 }).toBe(1);
      expect(Object.fromEntries(balances)).toEqual(await expected([15]));

      // Given up on: discarded for good.
      const fifteenth = (await deadLetters.list('balances'))[0]!;
      expect(await deadLetters.discard('balances', fifteenth.position)).toBe(true);
      expect(await deadLetters.discard('balances', fifteenth.position)).toBe(false);
      expect(await deadLetters.retry('balances', fifteenth.position)).toBe(false);
      expect(await deadLetters.count('balances')).toBe(0);
    } finally {
      await runner.stop();
    }
  });

  it('keeps projections apart (names that look like each other), rejects bad input, and a rebuild clears the letters', async () => {
    const store = await stores.create();
    await seed(store);
    const events = await store.readAll().toArray();
    const deadLetters = new NatsDeadLetterStore({ connection: store.connection, bucket: stores.bucket('dl2'), storage: 'memory' });
    const names = ['a', 'a.b', 'a.>', 'a b', 'a_2e'];
    for (const [i, name] of names.entries()) {
      await deadLetters.write(name, { kind: 'park', letter: newDeadLetter(name, events[i]!, new Error(`bad ${name}`), 1) });
    }
    for (const [i, name] of names.entries()) {
      expect(await deadLetters.count(name)).toBe(1);
      expect((await deadLetters.list(name)).map((l) => [l.projection, l.position, l.error])).toEqual([[name, events[i]!.position, `bad ${name}`]]);
    }
    await expect(deadLetters.retry('', 1)).rejects.toThrow(InvalidArgumentError);
    await expect(deadLetters.retry('a', 0)).rejects.toThrow(InvalidArgumentError);
    await expect(deadLetters.discard('a', 1.5)).rejects.toThrow(InvalidArgumentError);
    await expect(deadLetters.list('a', { limit: 0 })).rejects.toThrow(InvalidArgumentError);
    await deadLetters.write('a', { kind: 'clear' });
    expect(await deadLetters.count('a')).toBe(0);
    for (const name of names.slice(1)) expect(await deadLetters.count(name)).toBe(1);
  });
});
