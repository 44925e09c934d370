import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Aggregate,
  assertNever,
  EventOutOfOrderError,
  InMemoryEventStore,
  InvalidArgumentError,
  InvalidOperationError,
  type Event,
  type RecordedEvent,
} from '../src/index.js';

// A small bank account: the aggregate under test.
type AccountOpened = Event<'AccountOpened', { owner: string }>;
type Deposited = Event<'Deposited', { amount: number }>;
type Withdrawn = Event<'Withdrawn', { amount: number }>;
type AccountClosed = Event<'AccountClosed', null>;
type AccountEvent = AccountOpened | Deposited | Withdrawn | AccountClosed;

class InsufficientFunds extends InvalidOperationError {
  override readonly code = 'INSUFFICIENT_FUNDS';
}

class Account extends Aggregate<AccountEvent> {
  owner = '';
  balance = 0;
  closed = false;
  applied = 0;

  open(owner: string): void {
    if (this.version > 0) throw new InvalidOperationError(`account ${this.id} is already open`);
    this.raise('AccountOpened', { owner });
  }

  deposit(amount: number, metadata?: { correlationId: string }): void {
    this.raise('Deposited', { amount }, metadata);
  }

  withdraw(amount: number): void {
    if (amount > this.balance) throw new InsufficientFunds(`balance ${this.balance} < ${amount}`);
    this.raise('Withdrawn', { amount });
  }

  close(): void {
    this.raise('AccountClosed', null);
  }

  protected apply(event: AccountEvent): void {
    this.applied++;
    switch (event.type) {
      case 'AccountOpened':
        this.owner = event.data.owner;
        break;
      case 'Deposited':
        this.balance += event.data.amount;
        break;
      case 'Withdrawn':
        this.balance -= event.data.amount;
        break;
      case 'AccountClosed':
        this.closed = true;
        break;
      default:
        assertNever(event);
    }
  }
}

const stateOf = (a: Account) => ({ id: a.id, owner: a.owner, balance: a.balance, closed: a.closed, version: a.version });

/** Records events exactly as a store would number them: versions 1..n. */
async function record(id: string, events: readonly AccountEvent[]): Promise<RecordedEvent<AccountEvent>[]> {
  const store = new InMemoryEventStore();
  if (events.length === 0) return [];
  const result = await store.append(id, events, { expectedVersion: 'no-stream' });
  return result.events as unknown as RecordedEvent<AccountEvent>[];
}

function fakeRecorded(version: number, event: AccountEvent): RecordedEvent<AccountEvent> {
  return {
    ...event,
    metadata: {},
    streamId: 'acc',
    version,
    position: version,
    eventId: `id-${version}`,
    recordedAt: new Date(0),
  } as RecordedEvent<AccountEvent>;
}

describe('Aggregate', () => {
  it('starts empty', () => {
    const a = new Account('a1');
    expect(a.id).toBe('a1');
    expect(a.version).toBe(0);
    expect(a.persistedVersion).toBe(0);
    expect(a.uncommittedEvents).toEqual([]);
  });

  it('rejects an empty id', () => {
    expect(() => new Account('')).toThrow(InvalidArgumentError);
  });

  it('raise applies the event, bumps the version and records it as uncommitted', () => {
    const a = new Account('a1');
    a.open('ann');
    a.deposit(50, { correlationId: 'c-1' });
    a.withdraw(20);
    expect(a.owner).toBe('ann');
    expect(a.balance).toBe(30);
    expect(a.version).toBe(3);
    expect(a.persistedVersion).toBe(0);
    expect(a.uncommittedEvents).toEqual([
      { type: 'AccountOpened', data: { owner: 'ann' } },
      { type: 'Deposited', data: { amount: 50 }, metadata: { correlationId: 'c-1' } },
      { type: 'Withdrawn', data: { amount: 20 } },
    ]);
  });

  it('a broken rule raises nothing', () => {
    const a = new Account('a1');
    a.open('ann');
    a.deposit(10);
    expect(() => a.withdraw(11)).toThrow(InsufficientFunds);
    expect(a.version).toBe(2);
    expect(a.uncommittedEvents).toHaveLength(2);
    expect(a.balance).toBe(10);
  });

  it('markCommitted moves the persisted version up and forgets uncommitted events', () => {
    const a = new Account('a1');
    a.open('ann');
    a.deposit(5);
    a.markCommitted();
    expect(a.version).toBe(2);
    expect(a.persistedVersion).toBe(2);
    expect(a.uncommittedEvents).toEqual([]);
    a.deposit(7);
    expect(a.version).toBe(3);
    expect(a.persistedVersion).toBe(2);
    expect(a.uncommittedEvents).toEqual([{ type: 'Deposited', data: { amount: 7 } }]);
  });

  it('fromEvents rebuilds an instance of the subclass at the stream version', async () => {
    const events = await record('a1', [
      { type: 'AccountOpened', data: { owner: 'bob' } },
      { type: 'Deposited', data: { amount: 100 } },
      { type: 'Withdrawn', data: { amount: 40 } },
      { type: 'AccountClosed', data: null },
    ]);
    const a = Account.fromEvents('a1', events);
    expect(a).toBeInstanceOf(Account);
    expect(stateOf(a)).toEqual({ id: 'a1', owner: 'bob', balance: 60, closed: true, version: 4 });
    expect(a.persistedVersion).toBe(4);
    expect(a.uncommittedEvents).toEqual([]);
    // The rebuilt aggregate keeps working: new events continue from version 4.
    a.deposit(1);
    expect(a.version).toBe(5);
    expect(a.persistedVersion).toBe(4);
  });

  it('fromEvents accepts any iterable, e.g. a generator', () => {
    function* gen() {
      yield fakeRecorded(1, { type: 'AccountOpened', data: { owner: 'x' } });
      yield fakeRecorded(2, { type: 'Deposited', data: { amount: 3 } });
    }
    const a = Account.fromEvents('acc', gen());
    expect(stateOf(a)).toEqual({ id: 'acc', owner: 'x', balance: 3, closed: false, version: 2 });
  });

  it.each([
    ['a gap', [1, 3], 2, 3],
    ['a repeated version', [1, 2, 2], 3, 2],
    ['a stream that does not start at 1', [2], 1, 2],
    ['a version going backwards', [1, 2, 1], 3, 1],
  ])('fromEvents throws EventOutOfOrderError on %s', (_name, versions, expected, got) => {
    const events = versions.map((v) => fakeRecorded(v, { type: 'Deposited', data: { amount: 1 } }));
    let error: unknown;
    try {
      Account.fromEvents('acc', events);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(EventOutOfOrderError);
    const e = error as EventOutOfOrderError;
    expect(e.code).toBe('EVENT_OUT_OF_ORDER');
    expect(e.aggregateId).toBe('acc');
    expect(e.expectedVersion).toBe(expected);
    expect(e.eventVersion).toBe(got);
    expect(e.message).toContain(`expected version ${expected}`);
  });
});

// Random account histories that respect the rules (no overdraft).
type Op = { kind: 'deposit'; amount: number } | { kind: 'withdraw'; amount: number } | { kind: 'commit' };
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('deposit' as const), amount: fc.integer({ min: 1, max: 1000 }) }),
  fc.record({ kind: fc.constant('withdraw' as const), amount: fc.integer({ min: 1, max: 1000 }) }),
  fc.constant({ kind: 'commit' as const }),
);

/** Runs ops through the domain; an overdraft is refused as the rules say. Returns all events raised. */
function runOps(a: Account, ops: readonly Op[]): AccountEvent[] {
  const raised: AccountEvent[] = [...a.uncommittedEvents];
  for (const op of ops) {
    if (op.kind === 'commit') {
      a.markCommitted();
      continue;
    }
    const before = a.uncommittedEvents.length;
    try {
      if (op.kind === 'deposit') a.deposit(op.amount);
      else a.withdraw(op.amount);
    } catch (error) {
      if (!(error instanceof InsufficientFunds)) throw error;
    }
    raised.push(...a.uncommittedEvents.slice(before));
  }
  return raised;
}

describe('Aggregate properties', () => {
  it('fold determinism: replaying the same events gives the same state as raising them', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { maxLength: 60 }), async (ops) => {
        const live = new Account('p');
        live.open('owner');
        const raised = runOps(live, ops);
        const recorded = await record('p', raised);
        const once = Account.fromEvents('p', recorded);
        const twice = Account.fromEvents('p', recorded);
        expect(stateOf(once)).toEqual(stateOf(live));
        expect(stateOf(twice)).toEqual(stateOf(once));
        expect(once.balance).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: 150 },
    );
  });

  it('version invariants: version = events applied; persistedVersion + uncommitted = version', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 80 }), (ops) => {
        const a = new Account('p');
        a.open('o');
        let raisedTotal = 1;
        for (const op of ops) {
          const before = a.version;
          runOps(a, [op]);
          raisedTotal += a.version - before;
          expect(a.version).toBe(raisedTotal);
          expect(a.applied).toBe(a.version);
          expect(a.persistedVersion + a.uncommittedEvents.length).toBe(a.version);
          if (op.kind === 'commit') expect(a.uncommittedEvents).toHaveLength(0);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('rebuilding from a prefix gives the state after that many events', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { maxLength: 40 }), fc.nat(), async (ops, cut) => {
        const live = new Account('p');
        live.open('o');
        const raised = runOps(live, ops);
        const recorded = await record('p', raised);
        const n = 1 + (cut % recorded.length);
        const prefix = Account.fromEvents('p', recorded.slice(0, n));
        const replayedLive = new Account('p');
        for (const e of raised.slice(0, n)) {
          if (e.type === 'AccountOpened') replayedLive.open(e.data.owner);
          else if (e.type === 'Deposited') replayedLive.deposit(e.data.amount);
          else if (e.type === 'Withdrawn') replayedLive.withdraw(e.data.amount);
        }
        expect(stateOf(prefix)).toEqual(stateOf(replayedLive));
        expect(prefix.version).toBe(n);
      }),
      { numRuns: 100 },
    );
  });
});
