import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Aggregate,
  CapabilityNotSupportedError,
  COMMAND_STREAM_PREFIX,
  CommandBus,
  EventStoreDecorator,
  IdempotencyKeyReusedError,
  IdempotentCommands,
  InvalidOperationError,
  Repository,
  type EventStore,
  type EventStoreCapabilities,
  type Event,
  type StreamAppend,
  type AppendResult,
  type CommandContext,
  type AnyEvent,
  type AppendOptions,
  CommandPendingError,
  InMemoryEventStore,
  StoreUnavailableError,
} from '../src/index.js';
import { evolutionStoreKinds } from './fixtures/evolution-stores.js';

const kinds = evolutionStoreKinds();

type AccountEvent = Event<'AccountOpened', { owner: string }> | Event<'Deposited', { amount: number }>;
class Account extends Aggregate<AccountEvent> {
  balance = 0;
  open(owner: string) {
    this.raise('AccountOpened', { owner });
  }
  deposit(amount: number) {
    this.raise('Deposited', { amount });
  }
  protected apply(event: AccountEvent): void {
    if (event.type === 'Deposited') this.balance += event.data.amount;
  }
}
class AlreadyOpen extends InvalidOperationError {
  override readonly code = 'ALREADY_OPEN';
}

interface Result {
  readonly accountId: string;
  readonly version: number;
  /** Different on every run of the handler: proves repeats return the first answer. */
  readonly token: string;
}

function app(inner: EventStore) {
  const idempotency = new IdempotentCommands(inner, { waitForResultMs: 30_000 });
  const accounts = new Repository(idempotency.store, Account, { streamPrefix: 'account' });
  let runs = 0;
  const bus = new CommandBus()
    .use(idempotency.middleware())
    .register('Open', async (c: { type: 'Open'; data: { accountId: string; owner: string }; commandId?: string }, ctx: CommandContext): Promise<Result> => {
      runs++;
      if ((await accounts.find(c.data.accountId)) !== undefined) throw new AlreadyOpen(`account ${c.data.accountId} is open`);
      const account = new Account(c.data.accountId);
      account.open(c.data.owner);
      await accounts.save(account, { metadata: ctx.metadata });
      return { accountId: account.id, version: account.version, token: randomUUID() };
    })
    .register('Deposit', async (c: { type: 'Deposit'; data: { accountId: string; amount: number }; commandId?: string }): Promise<Result> => {
      runs++;
      const account = await accounts.load(c.data.accountId);
      if (c.data.amount !== 0) account.deposit(c.data.amount);
      if (account.uncommittedEvents.length > 0) await accounts.save(account);
      return { accountId: account.id, version: account.version, token: randomUUID() };
    });
  return { bus, idempotency, accounts, runs: () => runs };
}

/** A store that, like NATS JetStream, cannot append to several streams atomically. */
class SingleStreamOnly extends EventStoreDecorator {
  override get capabilities(): EventStoreCapabilities {
    return { atomicMultiStreamAppend: false };
  }
  override async appendMany(appends: readonly StreamAppend[]): Promise<AppendResult[]> {
    if (new Set(appends.map((a) => a.streamId)).size > 1) throw new CapabilityNotSupportedError('atomicMultiStreamAppend', 'single-stream store');
    return this.inner.appendMany(appends);
  }
}

describe.each(kinds)('idempotent commands on the $name store', (kind) => {
  it('a repeated command stores nothing new and answers with the first result', async () => {
    const inner = await (await kind.fresh()).open();
    const { bus, runs } = app(inner);
    const command = { type: 'Open' as const, commandId: 'req-1', data: { accountId: 'a1', owner: 'ann' } };
    const first = await bus.dispatch(command);
    const head = await inner.headPosition();
    const second = await bus.dispatch(command);
    expect(second).toEqual(first);
    expect(await inner.headPosition()).toBe(head);
    expect(runs()).toBe(1);
    expect(await inner.streamVersion('account-a1')).toBe(1);
    const record = await inner.readStream(`${COMMAND_STREAM_PREFIX}req-1`).toArray();
    expect(record.map((e) => e.type)).toEqual(['$CommandReceived', '$CommandCompleted']);
    const opened = (await inner.readStream('account-a1').toArray())[0]!;
    const log = (await inner.readAll().toArray()).map((e) => e.position);
    if (inner.capabilities?.atomicMultiStreamAppend === false) {
      // Claim first (NATS): the reservation, then the event, then the result.
      expect(log).toEqual([record[0]!.position, opened.position, record[1]!.position]);
    } else {
      // The reservation was written in the same append as the event, the result after it.
      expect(log).toEqual([opened.position, record[0]!.position, record[1]!.position]);
      expect(record[0]!.position).toBe(opened.position + 1);
    }
    // Without an id, nothing is deduplicated (and no record is written).
    await expect(bus.dispatch({ type: 'Open', data: { accountId: 'a1', owner: 'ann' } })).rejects.toBeInstanceOf(AlreadyOpen);
  });

  it('refuses the same id for another command, and writes nothing', async () => {
    const inner = await (await kind.fresh()).open();
    const { bus } = app(inner);
    await bus.dispatch({ type: 'Open', commandId: 'req-1', data: { accountId: 'a1', owner: 'ann' } });
    const head = await inner.headPosition();
    await expect(bus.dispatch({ type: 'Open', commandId: 'req-1', data: { accountId: 'a2', owner: 'bob' } })).rejects.toBeInstanceOf(
      IdempotencyKeyReusedError,
    );
    expect(await inner.headPosition()).toBe(head);
  });

  it('records commands that wrote nothing, and a failed command leaves no record', async () => {
    const inner = await (await kind.fresh()).open();
    const { bus, runs } = app(inner);
    await bus.dispatch({ type: 'Open', commandId: 'open', data: { accountId: 'a1', owner: 'ann' } });
    const noop = await bus.dispatch({ type: 'Deposit', commandId: 'noop', data: { accountId: 'a1', amount: 0 } });
    expect(await bus.dispatch({ type: 'Deposit', commandId: 'noop', data: { accountId: 'a1', amount: 0 } })).toEqual(noop);
    expect(runs()).toBe(2);
    await expect(bus.dispatch({ type: 'Deposit', commandId: 'missing', data: { accountId: 'nope', amount: 5 } })).rejects.toThrow(/not found/);
    expect(await inner.streamVersion(`${COMMAND_STREAM_PREFIX}missing`)).toBe(0);
  });

  it('property: concurrent repeats across two processes act once and answer the same', async () => {
    const location = await kind.fresh();
    const inner = await location.open();
    // Two app instances, each on its own store instance over the same data (its own connection,
    // its own cached heads): two processes, each with its own in-flight table.
    const processes = [app(inner), app(await location.open())];
    let round = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({ amount: fc.integer({ min: 1, max: 100 }), repeats: fc.array(fc.integer({ min: 0, max: 1 }), { minLength: 2, maxLength: 5 }) }),
          { minLength: 1, maxLength: 4 },
        ),
        async (commands) => {
          // Each run on its own account, so a failed run cannot disturb the next.
          const accountId = `acc-${++round}`;
          const opens = await Promise.all(
            [0, 1, 0, 1].map((p) => processes[p]!.bus.dispatch({ type: 'Open', commandId: `open-${round}`, data: { accountId, owner: 'o' } })),
          );
          expect(new Set(opens.map((o) => JSON.stringify(o))).size).toBe(1);
          // Deposits on one account race each other (no retries): an attempt wins, loses the
          // reservation race to its twin, or loses the version race to its twin or another command.
          const dispatch = (p: number, i: number) =>
            processes[p]!.bus.dispatch({ type: 'Deposit', commandId: `dep-${round}-${i}`, data: { accountId, amount: commands[i]!.amount } });
          const answers = await Promise.all(
            commands.map((c, i) => Promise.all(c.repeats.map((p) => dispatch(p, i).catch((e: unknown) => e as Error)))),
          );
          let expectedBalance = 0;
          for (let i = 0; i < commands.length; i++) {
            const ok = answers[i]!.filter((a) => !(a instanceof Error));
            // Repeats in one process share one outcome; every success answers the same.
            expect(new Set(ok.map((a) => JSON.stringify(a))).size).toBeLessThanOrEqual(1);
            const later = await dispatch(0, i).catch((e: unknown) => e as Error);
            if (ok.length > 0) {
              // A repeat after the race answers with the first result, and acts no more.
              expect(JSON.stringify(later)).toBe(JSON.stringify(ok[0]));
              expectedBalance += commands[i]!.amount;
            } else if (!(later instanceof Error)) {
              expectedBalance += commands[i]!.amount;
            }
          }
          const stored = (await inner.readStream(`account-${accountId}`).toArray()).filter((e) => e.type === 'Deposited');
          // Exactly one Deposited event per handled command id.
          expect(stored.map((e) => (e.data as { amount: number }).amount).reduce((a, b) => a + b, 0)).toBe(expectedBalance);
          expect((await processes[1]!.accounts.load(accountId)).balance).toBe(expectedBalance);
          expect(stored.length).toBeLessThanOrEqual(commands.length);
        },
      ),
      { numRuns: kind.name === 'memory' ? 30 : 8 },
    );
  });

  it('concurrent repeats in one process share the first outcome, errors included', async () => {
    const inner = await (await kind.fresh()).open();
    const { bus, runs } = app(inner);
    const repeats = await Promise.all(
      [1, 2, 3].map(() => bus.dispatch({ type: 'Deposit', commandId: 'd', data: { accountId: 'none', amount: 1 } }).catch((e: unknown) => e)),
    );
    expect(runs()).toBe(1);
    expect(repeats[1]).toBe(repeats[0]);
    expect(repeats[2]).toBe(repeats[0]);
  });

  it('claims first on a store without atomic multi-stream appends', async () => {
    const inner = await (await kind.fresh()).open();
    const { bus, runs } = app(new SingleStreamOnly(inner));
    const command = { type: 'Open' as const, commandId: 'req-1', data: { accountId: 'a1', owner: 'ann' } };
    const [a, b] = await Promise.all([bus.dispatch(command), bus.dispatch(command)]);
    expect(b).toEqual(a);
    expect(await bus.dispatch(command)).toEqual(a);
    expect(await inner.streamVersion('account-a1')).toBe(1);
    expect(runs()).toBeGreaterThanOrEqual(1);
  });
});

/** Fails the first `failures` appends of command results with a transient error. */
class FlakyResults extends EventStoreDecorator {
  constructor(
    inner: EventStore,
    private failures: number,
  ) {
    super(inner);
  }
  override async append(streamId: string, events: readonly AnyEvent[], options: AppendOptions): Promise<AppendResult> {
    if (events.some((e) => e.type === '$CommandCompleted') && this.failures-- > 0) throw new StoreUnavailableError('flaky');
    return this.inner.append(streamId, events, options);
  }
}

describe('claims on stores without atomic multi-stream appends', () => {
  it('a claim whose events fail is abandoned, and the next attempt runs', async () => {
    const inner = new InMemoryEventStore();
    const idempotency = new IdempotentCommands(new SingleStreamOnly(inner));
    let stale = true;
    const run = () =>
      idempotency.execute('x', { type: 'Write', data: 1 }, async () => {
        await idempotency.store.append('s', [{ type: 'Written', data: 1 }], { expectedVersion: stale ? 5 : 'any' });
        return 'done';
      });
    await expect(run()).rejects.toThrow(/Concurrency conflict/);
    expect(await idempotency.recordOf('x')).toBeUndefined();
    stale = false;
    expect(await run()).toBe('done');
    expect(await run()).toBe('done');
    expect(await inner.streamVersion('s')).toBe(1);
    expect((await inner.readStream('$command-x').toArray()).map((e) => e.type)).toEqual([
      '$CommandReceived',
      '$CommandAbandoned',
      '$CommandReceived',
      '$CommandCompleted',
    ]);
  });
});

describe('recording results', () => {
  it('retries a transient failure to record the result, and reports it to the logger', async () => {
    const warnings: string[] = [];
    const logger = { debug() {}, info() {}, error() {}, warn: (message: string) => void warnings.push(message) };
    const store = new FlakyResults(new InMemoryEventStore(), 2);
    const idempotency = new IdempotentCommands(store, { logger });
    const run = () => idempotency.execute('c1', { type: 'Write', data: 1 }, async () => {
      await idempotency.store.append('s', [{ type: 'Written', data: 1 }], { expectedVersion: 'any' });
      return { ok: true };
    });
    expect(await run()).toEqual({ ok: true });
    expect(warnings).toHaveLength(2);
    expect(await run()).toEqual({ ok: true });
    expect(await store.streamVersion('s')).toBe(1);
  });

  it('a result that could not be recorded leaves repeats pending, never acting twice', async () => {
    const store = new FlakyResults(new InMemoryEventStore(), 100);
    const idempotency = new IdempotentCommands(store, { waitForResultMs: 50 });
    const run = () => idempotency.execute('c1', { type: 'Write', data: 1 }, async () => {
      await idempotency.store.append('s', [{ type: 'Written', data: 1 }], { expectedVersion: 'any' });
      return { ok: true };
    });
    await expect(run()).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(run()).rejects.toBeInstanceOf(CommandPendingError);
    expect(await store.streamVersion('s')).toBe(1);
  });
});
