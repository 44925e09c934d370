import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Aggregate,
  AggregateNotFoundError,
  assertNever,
  CommandBus,
  ConcurrencyError,
  EventBus,
  InMemoryEventStore,
  InvalidArgumentError,
  InvalidOperationError,
  Repository,
  type Command,
  type Event,
  type RecordedEvent,
  type SubscriberFailure,
} from '../src/index.js';

type Opened = Event<'Opened', { owner: string }>;
type Deposited = Event<'Deposited', { amount: number }>;
type Withdrawn = Event<'Withdrawn', { amount: number }>;
type AccountEvent = Opened | Deposited | Withdrawn;

class Account extends Aggregate<AccountEvent> {
  owner = '';
  balance = 0;
  deposits: number[] = [];

  open(owner: string): void {
    if (this.version > 0) throw new InvalidOperationError(`account ${this.id} is already open`);
    this.raise('Opened', { owner });
  }

  deposit(amount: number, metadata?: Record<string, string>): void {
    this.raise('Deposited', { amount }, metadata);
  }

  withdraw(amount: number): void {
    if (amount > this.balance) throw new InvalidOperationError(`balance ${this.balance} < ${amount}`);
    this.raise('Withdrawn', { amount });
  }

  protected apply(event: AccountEvent): void {
    switch (event.type) {
      case 'Opened':
        this.owner = event.data.owner;
        break;
      case 'Deposited':
        this.balance += event.data.amount;
        this.deposits.push(event.data.amount);
        break;
      case 'Withdrawn':
        this.balance -= event.data.amount;
        break;
      default:
        assertNever(event);
    }
  }
}

function setup(options: ConstructorParameters<typeof Repository<Account>>[2] = {}) {
  const store = new InMemoryEventStore();
  const repo = new Repository(store, Account, options);
  return { store, repo };
}

async function openAccount(repo: Repository<Account>, id: string, deposits: number[] = []): Promise<Account> {
  const a = new Account(id);
  a.open('owner');
  for (const d of deposits) a.deposit(d);
  await repo.save(a);
  return a;
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject');
}

describe('Repository load / find / save', () => {
  it('saves a new aggregate with no-stream and loads it back', async () => {
    const { store, repo } = setup();
    const a = new Account('a1');
    a.open('ann');
    a.deposit(10);
    a.deposit(5);
    const result = await repo.save(a);
    expect(result.version).toBe(3);
    expect(result.events.map((e) => e.version)).toEqual([1, 2, 3]);
    expect(a.persistedVersion).toBe(3);
    expect(a.uncommittedEvents).toEqual([]);
    expect(await store.streamVersion('a1')).toBe(3);

    const loaded = await repo.load('a1');
    expect(loaded).toBeInstanceOf(Account);
    expect(loaded.owner).toBe('ann');
    expect(loaded.balance).toBe(15);
    expect(loaded.version).toBe(3);
    expect(loaded.persistedVersion).toBe(3);
    expect(loaded.uncommittedEvents).toEqual([]);
  });

  it('uses the stream prefix', async () => {
    const { store, repo } = setup({ streamPrefix: 'account' });
    await openAccount(repo, 'a1');
    expect(repo.streamIdOf('a1')).toBe('account-a1');
    expect(await store.streamVersion('account-a1')).toBe(1);
    expect(await store.streamVersion('a1')).toBe(0);
    expect((await repo.load('a1')).owner).toBe('owner');
  });

  it('load of a missing aggregate throws AggregateNotFoundError; find resolves undefined', async () => {
    const { repo } = setup({ streamPrefix: 'account' });
    const error = await caught(repo.load('nope'));
    expect(error).toBeInstanceOf(AggregateNotFoundError);
    expect((error as AggregateNotFoundError).code).toBe('AGGREGATE_NOT_FOUND');
    expect((error as AggregateNotFoundError).streamId).toBe('account-nope');
    expect(await repo.find('nope')).toBeUndefined();
  });

  it('saving a second new aggregate with an existing id conflicts and writes nothing', async () => {
    const { store, repo } = setup();
    await openAccount(repo, 'a1', [1]);
    const twin = new Account('a1');
    twin.open('mallory');
    const error = await caught(repo.save(twin));
    expect(error).toBeInstanceOf(ConcurrencyError);
    expect(error).toMatchObject({ streamId: 'a1', expectedVersion: 'no-stream', actualVersion: 2 });
    expect(await store.streamVersion('a1')).toBe(2);
    expect((await repo.load('a1')).owner).toBe('owner');
  });

  it('a conflicting save writes nothing and the loser keeps its uncommitted events', async () => {
    const { store, repo } = setup();
    await openAccount(repo, 'a1', [100]);
    const bob = await repo.load('a1');
    const alice = await repo.load('a1');
    bob.withdraw(30);
    alice.withdraw(80);
    await repo.save(bob);

    const error = await caught(repo.save(alice));
    expect(error).toBeInstanceOf(ConcurrencyError);
    expect(error).toMatchObject({ streamId: 'a1', expectedVersion: 2, actualVersion: 3 });
    expect((error as Error).message).toContain('version 2');
    expect((error as Error).message).toContain('version 3');

    expect(await store.streamVersion('a1')).toBe(3);
    const events = await store.readStream('a1').toArray();
    expect(events.map((e) => e.data)).toEqual([{ owner: 'owner' }, { amount: 100 }, { amount: 30 }]);
    expect(alice.uncommittedEvents).toEqual([{ type: 'Withdrawn', data: { amount: 80 } }]);
    expect(alice.version).toBe(3);
    expect(alice.persistedVersion).toBe(2);

    // Saving again still conflicts (nothing changed), and never half-writes.
    await expect(repo.save(alice)).rejects.toBeInstanceOf(ConcurrencyError);
    expect(await store.streamVersion('a1')).toBe(3);
  });

  it('saving with nothing uncommitted is a pure version check', async () => {
    const { store, repo } = setup();
    await openAccount(repo, 'a1');
    const a = await repo.load('a1');
    const result = await repo.save(a);
    expect(result.version).toBe(1);
    expect(result.events).toEqual([]);
    await openAccount(repo, 'a2');
    const stale = await repo.load('a2');
    const fresh = await repo.load('a2');
    fresh.deposit(1);
    await repo.save(fresh);
    await expect(repo.save(stale)).rejects.toBeInstanceOf(ConcurrencyError);
    expect(await store.streamVersion('a2')).toBe(2);
  });

  it('merges save metadata under each event’s own metadata', async () => {
    const { store, repo } = setup();
    const a = new Account('a1');
    a.open('ann');
    a.deposit(1, { causationId: 'own-cause', note: 'mine' });
    await repo.save(a, { metadata: { correlationId: 'corr', causationId: 'cmd' } });
    const [opened, deposited] = await store.readStream('a1').toArray();
    expect(opened!.metadata).toEqual({ correlationId: 'corr', causationId: 'cmd' });
    expect(deposited!.metadata).toEqual({ correlationId: 'corr', causationId: 'own-cause', note: 'mine' });
  });
});

describe('recorded event ids', () => {
  it('are distinct UUID v4 strings', async () => {
    const { store, repo } = setup();
    for (let i = 0; i < 50; i++) await openAccount(repo, `a${i}`, Array.from({ length: 40 }, (_, k) => k + 1));
    const events = await store.readAll().toArray();
    expect(events).toHaveLength(50 * 41);
    const ids = events.map((e) => e.eventId);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('Repository time travel', () => {
  it('load(id, { version }) returns the state as of that version', async () => {
    const { repo } = setup();
    await openAccount(repo, 'a1', [10, 20, 30, 40]);
    for (let v = 1; v <= 5; v++) {
      const past = await repo.load('a1', { version: v });
      expect(past.version).toBe(v);
      expect(past.persistedVersion).toBe(v);
      expect(past.deposits).toEqual([10, 20, 30, 40].slice(0, v - 1));
    }
  });

  it('a version beyond the end throws AggregateNotFoundError naming both versions', async () => {
    const { repo } = setup();
    await openAccount(repo, 'a1', [10, 20]);
    const error = await caught(repo.load('a1', { version: 7 }));
    expect(error).toBeInstanceOf(AggregateNotFoundError);
    expect(error).toMatchObject({ aggregateId: 'a1', requestedVersion: 7, actualVersion: 3 });
    expect((error as Error).message).toContain('version 7');
    expect((error as Error).message).toContain('version 3');
    // find is for absence, not for a stream too short for the wanted version.
    await expect(repo.find('a1', { version: 4 })).rejects.toBeInstanceOf(AggregateNotFoundError);
    expect(await repo.find('missing', { version: 2 })).toBeUndefined();
  });

  it.each([0, -1, 1.5, Number.NaN])('rejects version %s', async (version) => {
    const { repo } = setup();
    await openAccount(repo, 'a1');
    await expect(repo.load('a1', { version })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('a past state can be saved only if nothing happened since (it conflicts otherwise)', async () => {
    const { store, repo } = setup();
    await openAccount(repo, 'a1', [10, 20]);
    const past = await repo.load('a1', { version: 2 });
    past.deposit(5);
    await expect(repo.save(past)).rejects.toMatchObject({ expectedVersion: 2, actualVersion: 3 });
    expect(await store.streamVersion('a1')).toBe(3);
  });
});

describe('Repository.update', () => {
  it('runs decide and saves', async () => {
    const { repo } = setup();
    await openAccount(repo, 'a1');
    const updated = await repo.update('a1', (a) => a.deposit(7));
    expect(updated.balance).toBe(7);
    expect(updated.persistedVersion).toBe(2);
    expect((await repo.load('a1')).balance).toBe(7);
  });

  it('reloads and re-runs decide after a conflict', async () => {
    const { store, repo } = setup();
    await openAccount(repo, 'a1');
    const seen: number[] = [];
    const result = await repo.update('a1', async (a) => {
      seen.push(a.version);
      if (seen.length === 1) {
        // Another writer gets in between this load and this save.
        const other = await repo.load('a1');
        other.deposit(100);
        await repo.save(other);
      }
      a.withdraw(60); // only possible on the reloaded state
    }).catch((e: unknown) => e);
    // The first attempt cannot withdraw 60 from 0 — so the rule fires before any conflict.
    expect(result).toBeInstanceOf(InvalidOperationError);
    expect(seen).toEqual([1]);

    const attempts: number[] = [];
    const saved = await repo.update('a1', async (a) => {
      attempts.push(a.version);
      if (attempts.length === 1) {
        const other = await repo.load('a1');
        other.deposit(50);
        await repo.save(other);
      }
      a.deposit(1);
    });
    expect(attempts).toEqual([2, 3]);
    expect(saved.balance).toBe(151);
    expect(saved.version).toBe(4);
    expect(await store.streamVersion('a1')).toBe(4);
  });

  it('gives up with the ConcurrencyError when retries are exhausted', async () => {
    for (const retries of [0, 2]) {
      const { store, repo } = setup();
      await openAccount(repo, 'a1');
      let calls = 0;
      const error = await caught(
        repo.update(
          'a1',
          async (a) => {
            calls++;
            const other = await repo.load('a1');
            other.deposit(1);
            await repo.save(other);
            a.deposit(1000);
          },
          { retries },
        ),
      );
      expect(error).toBeInstanceOf(ConcurrencyError);
      expect(calls).toBe(retries + 1);
      // Only the interfering writes landed, never the 1000.
      const loaded = await repo.load('a1');
      expect(loaded.deposits).toEqual(new Array(retries + 1).fill(1));
      expect(await store.streamVersion('a1')).toBe(retries + 2);
    }
  });

  it('does not retry other errors, and rejects bad retries', async () => {
    const { repo } = setup();
    await openAccount(repo, 'a1');
    let calls = 0;
    await expect(
      repo.update('a1', (a) => {
        calls++;
        a.withdraw(1);
      }),
    ).rejects.toBeInstanceOf(InvalidOperationError);
    expect(calls).toBe(1);
    await expect(repo.update('missing', () => undefined)).rejects.toBeInstanceOf(AggregateNotFoundError);
    await expect(repo.update('a1', () => undefined, { retries: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('passes metadata to the saved events', async () => {
    const { store, repo } = setup();
    await openAccount(repo, 'a1');
    await repo.update('a1', (a) => a.deposit(1), { metadata: { correlationId: 'c', causationId: 'x' } });
    const events = await store.readStream('a1', { fromVersion: 2 }).toArray();
    expect(events[0]!.metadata).toEqual({ correlationId: 'c', causationId: 'x' });
  });
});

describe('Repository with CommandBus: metadata from the CommandContext', () => {
  type Deposit = Command<'Deposit', { accountId: string; amount: number }>;
  type Open = Command<'Open', { accountId: string; owner: string }>;

  function wire() {
    const { store, repo } = setup({ streamPrefix: 'acc' });
    const bus = new CommandBus()
      .register('Open', async (c: Open, ctx) => {
        const a = new Account(c.data.accountId);
        a.open(c.data.owner);
        await repo.save(a, { metadata: ctx.metadata });
        return { version: a.version };
      })
      .register('Deposit', async (c: Deposit, ctx) => {
        const a = await repo.update(c.data.accountId, (acc) => acc.deposit(c.data.amount), { metadata: ctx.metadata });
        return a.balance;
      });
    return { store, bus };
  }

  it('events carry causationId = commandId and the command’s correlationId', async () => {
    const { store, bus } = wire();
    const opened = await bus.dispatch({
      type: 'Open',
      data: { accountId: 'a1', owner: 'ann' },
      commandId: 'cmd-1',
      correlationId: 'flow-9',
    });
    expect(opened).toEqual({ version: 1 });
    const balance = await bus.dispatch({ type: 'Deposit', data: { accountId: 'a1', amount: 5 }, commandId: 'cmd-2' });
    expect(balance).toBe(5);
    const [e1, e2] = await store.readStream('acc-a1').toArray();
    expect(e1!.metadata).toEqual({ correlationId: 'flow-9', causationId: 'cmd-1' });
    // Without a correlationId the command starts a new flow: correlation = its own id.
    expect(e2!.metadata).toEqual({ correlationId: 'cmd-2', causationId: 'cmd-2' });
  });

  it('a command without commandId gets a fresh UUID as causation', async () => {
    const { store, bus } = wire();
    await bus.dispatch({ type: 'Open', data: { accountId: 'a2', owner: 'x' } });
    await bus.dispatch({ type: 'Open', data: { accountId: 'a3', owner: 'y' } });
    const [m2] = (await store.readStream('acc-a2').toArray()).map((e) => e.metadata);
    const [m3] = (await store.readStream('acc-a3').toArray()).map((e) => e.metadata);
    expect(m2!.causationId).toMatch(/^[0-9a-f-]{36}$/);
    expect(m2!.correlationId).toBe(m2!.causationId);
    expect(m3!.causationId).not.toBe(m2!.causationId);
  });
});

describe('Repository with EventBus', () => {
  it('publishes the recorded events after commit, by type and to all subscribers', async () => {
    const bus = new EventBus();
    const { store, repo } = setup({ eventBus: bus });
    const deposits: RecordedEvent[] = [];
    const all: Array<{ type: string; version: number; committedVersion: number }> = [];
    bus.subscribe('Deposited', (e) => {
      deposits.push(e);
    });
    bus.subscribeAll(async (e) => {
      // Delivered after commit: the store already shows the event.
      all.push({ type: e.type, version: e.version, committedVersion: await store.streamVersion(e.streamId) });
    });
    const a = new Account('a1');
    a.open('ann');
    a.deposit(3);
    const result = await repo.save(a);
    await bus.drain();
    expect(deposits).toEqual([result.events[1]]);
    expect(Object.isFrozen(deposits[0])).toBe(true);
    expect(all).toEqual([
      { type: 'Opened', version: 1, committedVersion: 2 },
      { type: 'Deposited', version: 2, committedVersion: 2 },
    ]);
  });

  it('publishes nothing when the save fails', async () => {
    const bus = new EventBus();
    const { repo } = setup({ eventBus: bus });
    await openAccount(repo, 'a1');
    const seen: string[] = [];
    bus.subscribeAll((e) => {
      seen.push(`${e.type}@${e.version}`);
    });
    const twin = new Account('a1');
    twin.open('x');
    await expect(repo.save(twin)).rejects.toBeInstanceOf(ConcurrencyError);
    expect(seen).toEqual([]);
  });

  it('a throwing or rejecting subscriber fails neither the save nor the other subscribers', async () => {
    const bus = new EventBus();
    const { store, repo } = setup({ eventBus: bus });
    const failures: SubscriberFailure[] = [];
    bus.onError((f) => failures.push(f));
    const healthy: number[] = [];
    bus.subscribe('Deposited', () => {
      throw new Error('sync boom');
    }, { name: 'thrower' });
    bus.subscribeAll(async () => {
      await Promise.resolve();
      throw new Error('async boom');
    }, { name: 'rejecter' });
    bus.subscribeAll((e) => {
      healthy.push(e.version);
    });
    const a = new Account('a1');
    a.open('ann');
    a.deposit(1);
    a.deposit(2);
    const result = await repo.save(a);
    await bus.drain();
    expect(result.version).toBe(3);
    expect(await store.streamVersion('a1')).toBe(3);
    expect(healthy).toEqual([1, 2, 3]);
    const summary = failures
      .map((f) => `${f.subscriber}:${(f.error as Error).message}:${f.event.version}`)
      .sort();
    expect(summary).toEqual(
      ['rejecter:async boom:1', 'rejecter:async boom:2', 'rejecter:async boom:3', 'thrower:sync boom:2', 'thrower:sync boom:3'].sort(),
    );
  });
});

describe('Repository properties', () => {
  it('k concurrent updates with retries >= k all succeed and all count', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 1000 }), { minLength: 1, maxLength: 12 }), async (amounts) => {
        const { store, repo } = setup();
        await openAccount(repo, 'a1');
        let runs = 0;
        const results = await Promise.all(
          amounts.map((amount) =>
            repo.update(
              'a1',
              (a) => {
                runs++;
                a.deposit(amount);
              },
              { retries: amounts.length },
            ),
          ),
        );
        const final = await repo.load('a1');
        expect(final.version).toBe(1 + amounts.length);
        expect(final.balance).toBe(amounts.reduce((s, x) => s + x, 0));
        expect([...final.deposits].sort((x, y) => x - y)).toEqual([...amounts].sort((x, y) => x - y));
        expect(new Set(results.map((r) => r.version)).size).toBe(amounts.length);
        expect(runs).toBeGreaterThanOrEqual(amounts.length);
        expect(await store.streamVersion('a1')).toBe(1 + amounts.length);
      }),
      { numRuns: 60 },
    );
  });

  it('with no retries exactly one save per version wins', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: 10 }), fc.integer({ min: 0, max: 5 }), async (k, prior) => {
        const { store, repo } = setup();
        await openAccount(repo, 'a1', new Array<number>(prior).fill(1));
        const base = 1 + prior;
        const copies = await Promise.all(Array.from({ length: k }, () => repo.load('a1')));
        copies.forEach((c, i) => c.deposit(100 + i));
        const outcomes = await Promise.allSettled(copies.map((c) => repo.save(c)));
        const won = outcomes.filter((o) => o.status === 'fulfilled');
        const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
        expect(won).toHaveLength(1);
        for (const o of lost) {
          expect(o.reason).toBeInstanceOf(ConcurrencyError);
          expect(o.reason).toMatchObject({ expectedVersion: base, actualVersion: base + 1 });
        }
        expect(await store.streamVersion('a1')).toBe(base + 1);
        const winner = copies[outcomes.findIndex((o) => o.status === 'fulfilled')]!;
        expect((await repo.load('a1')).balance).toBe(prior + winner.deposits.at(-1)!);

        // Concurrent updates without retries: every success added exactly one event, failures none.
        const settled = await Promise.allSettled(
          Array.from({ length: k }, () => repo.update('a1', (a) => a.deposit(1), { retries: 0 })),
        );
        const ok = settled.filter((o) => o.status === 'fulfilled').length;
        expect(ok).toBeGreaterThanOrEqual(1);
        for (const o of settled) if (o.status === 'rejected') expect(o.reason).toBeInstanceOf(ConcurrencyError);
        expect(await store.streamVersion('a1')).toBe(base + 1 + ok);
      }),
      { numRuns: 60 },
    );
  });
});

describe('Repository on the in-memory store: synchronous load and save', () => {
  /** Replaces append and readStream, as a subclass or a spy would: the Repository must use them. */
  class CountingStore extends InMemoryEventStore {
    appends = 0;
    reads = 0;
    override append(...args: Parameters<InMemoryEventStore['append']>) {
      this.appends++;
      return super.append(...args);
    }
    override readStream(...args: Parameters<InMemoryEventStore['readStream']>) {
      this.reads++;
      return super.readStream(...args);
    }
  }

  it('events without their own metadata share one frozen copy of the save metadata', async () => {
    const { store, repo } = setup();
    const a = new Account('a1');
    a.open('ann');
    a.deposit(1);
    a.deposit(2, { note: 'mine' });
    const metadata: Record<string, string> = { correlationId: 'corr', causationId: 'cmd' };
    await repo.save(a, { metadata });
    metadata['correlationId'] = 'changed later';
    const [opened, first, second] = await store.readStream('a1').toArray();
    expect(opened!.metadata).toEqual({ correlationId: 'corr', causationId: 'cmd' });
    expect(first!.metadata).toBe(opened!.metadata);
    expect(opened!.metadata).not.toBe(metadata);
    expect(Object.isFrozen(opened!.metadata)).toBe(true);
    expect(second!.metadata).toEqual({ correlationId: 'corr', causationId: 'cmd', note: 'mine' });
  });

  it('stores the same events and metadata as the generic path through append()', async () => {
    const meta = fc.option(fc.dictionary(fc.constantFrom('correlationId', 'causationId', 'note'), fc.string({ maxLength: 6 }), { maxKeys: 3 }), {
      nil: undefined,
    });
    await fc.assert(
      fc.asyncProperty(meta, fc.array(fc.tuple(fc.integer({ min: 1, max: 9 }), meta), { maxLength: 5 }), async (defaults, deposits) => {
        const fast = new InMemoryEventStore();
        const counting = new CountingStore();
        for (const store of [fast, counting]) {
          const repo = new Repository(store, Account);
          const a = new Account('a1');
          a.open('ann');
          for (const [amount, own] of deposits) a.deposit(amount, own);
          await repo.save(a, defaults === undefined ? {} : { metadata: defaults });
          await repo.update('a1', (acc) => acc.deposit(1), defaults === undefined ? {} : { metadata: defaults });
        }
        const strip = (events: readonly RecordedEvent[]) => events.map((e) => ({ type: e.type, data: e.data, metadata: e.metadata, version: e.version }));
        const viaFast = strip(await fast.readStream('a1').toArray());
        expect(viaFast).toEqual(strip(await counting.readStream('a1').toArray()));
        viaFast.slice(1, -1).forEach((e, i) => expect(e.metadata).toEqual({ ...defaults, ...deposits[i]![1] }));
        // The replaced methods saw every save and every load.
        expect(counting.appends).toBe(2);
        expect(counting.reads).toBeGreaterThanOrEqual(1);
      }),
      { numRuns: 50 },
    );
  });

  it('load after close rejects with StoreClosedError; a bad stream id with InvalidStreamIdError', async () => {
    const { store, repo } = setup();
    await openAccount(repo, 'a1');
    await expect(repo.load('bad\u0000id')).rejects.toMatchObject({ code: 'INVALID_STREAM_ID' });
    await store.close();
    await expect(repo.load('a1')).rejects.toMatchObject({ code: 'STORE_CLOSED' });
    await expect(repo.update('a1', (a) => a.deposit(1))).rejects.toMatchObject({ code: 'STORE_CLOSED' });
  });

  it('the command context metadata is frozen, and stored as it is', async () => {
    const { store, repo } = setup();
    let seen: object | undefined;
    const bus = new CommandBus().register('Open', async (c: Command<'Open', { id: string }>, ctx) => {
      seen = ctx.metadata;
      const a = new Account(c.data.id);
      a.open('ann');
      await repo.save(a, { metadata: ctx.metadata });
    });
    await bus.dispatch({ type: 'Open', data: { id: 'a1' }, commandId: 'cmd-1' });
    const [opened] = await store.readStream('a1').toArray();
    expect(Object.isFrozen(seen)).toBe(true);
    expect(opened!.metadata).toBe(seen);
    expect(opened!.metadata).toEqual({ correlationId: 'cmd-1', causationId: 'cmd-1' });
    // An id no store can keep is still refused by the append, with nothing written.
    await expect(bus.dispatch({ type: 'Open', data: { id: 'a2' }, commandId: 'cmd\u0000' })).rejects.toMatchObject({
      code: 'INVALID_EVENT',
    });
    expect(await store.streamVersion('a2')).toBe(0);
  });
});
