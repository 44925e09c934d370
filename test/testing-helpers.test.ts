import { describe, expect, expectTypeOf, it } from 'vitest';
import { Aggregate, EventOutOfOrderError, InvalidEventError, InvalidOperationError, type Event } from '../src/index.js';
import { given, ScenarioAssertionError, type ExpectedEvent } from '../src/testing/index.js';

type AccountEvent =
  | Event<'AccountOpened', { owner: string }>
  | Event<'Deposited', { amount: number }>
  | Event<'Withdrawn', { amount: number }>
  | Event<'AccountClosed', null>;

class InsufficientFunds extends InvalidOperationError {
  override readonly code = 'INSUFFICIENT_FUNDS';
}
class AccountClosedError extends InvalidOperationError {
  override readonly code = 'ACCOUNT_CLOSED';
}

class Account extends Aggregate<AccountEvent> {
  balance = 0;
  open = false;
  /** The recorded version of each applied event (raised events have none yet). */
  applied: (number | undefined)[] = [];

  openFor(owner: string): void {
    this.raise('AccountOpened', { owner });
  }

  deposit(amount: number, correlationId?: string): void {
    if (!this.open) throw new AccountClosedError('The account is closed.');
    this.raise('Deposited', { amount }, correlationId === undefined ? undefined : { correlationId });
  }

  withdraw(amount: number): void {
    if (!this.open) throw new AccountClosedError('The account is closed.');
    if (amount > this.balance) throw new InsufficientFunds(`Cannot withdraw ${amount}: the balance is ${this.balance}.`);
    this.raise('Withdrawn', { amount });
  }

  async withdrawLater(amount: number): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 1));
    this.withdraw(amount);
  }

  close(): void {
    this.raise('AccountClosed', null);
  }

  /** A bug on purpose: raises data the store cannot hold. */
  stampDeposit(): void {
    this.raise('Deposited', { amount: new Date(0) as unknown as number });
  }

  protected apply(event: AccountEvent): void {
    this.applied.push((event as { version?: number }).version);
    switch (event.type) {
      case 'AccountOpened':
        this.open = true;
        break;
      case 'Deposited':
        this.balance += event.data.amount;
        break;
      case 'Withdrawn':
        this.balance -= event.data.amount;
        break;
      case 'AccountClosed':
        this.open = false;
        break;
    }
  }
}

const opened: AccountEvent = { type: 'AccountOpened', data: { owner: 'ada' } };
const deposited = (amount: number): AccountEvent => ({ type: 'Deposited', data: { amount } });

function failureOf(fn: () => unknown): ScenarioAssertionError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ScenarioAssertionError);
    return error as ScenarioAssertionError;
  }
  throw new Error('expected the scenario to fail, but it passed');
}

describe('given/when/then', () => {
  it('rebuilds the aggregate from the given events with versions 1..n and returns it from then()', () => {
    const account = given(Account, [opened, deposited(50), deposited(20)], { id: 'acc-7' })
      .when((a) => a.withdraw(30))
      .then([{ type: 'Withdrawn', data: { amount: 30 } }]);
    expect(account.id).toBe('acc-7');
    expect(account.balance).toBe(40);
    expect(account.applied).toEqual([1, 2, 3, undefined]);
    expect(account.version).toBe(4);
    expect(account.persistedVersion).toBe(3);
  });

  it('starts from a new aggregate without given events', () => {
    const account = given(Account)
      .when((a) => a.openFor('bob'))
      .then([{ type: 'AccountOpened', data: { owner: 'bob' } }]);
    expect(account.id).toBe('aggregate-1');
    expect(account.open).toBe(true);
  });

  it('passes with then([]) when nothing is raised, and fails when something is', () => {
    given(Account, [opened]).when(() => undefined).then([]);
    const error = failureOf(() => given(Account, [opened]).when((a) => a.deposit(5)).then([]));
    expect(error.message).toContain('Expected no events but the aggregate raised 1 event');
    expect(error.message).toContain('Deposited');
  });

  it('fails when the data differ, naming the first difference and carrying actual/expected for a diff', () => {
    const error = failureOf(() =>
      given(Account, [opened])
        .when((a) => {
          a.deposit(10);
          a.deposit(20);
        })
        .then([deposited(10), deposited(25)] as ExpectedEvent<AccountEvent>[]),
    );
    expect(error.message).toContain('first difference at #1');
    expect(error.message).toContain('amount: 25');
    expect(error.message).toContain('amount: 20');
    expect(error.actual).toEqual([deposited(10), deposited(20)]);
    expect(error.expected).toEqual([deposited(10), deposited(25)]);
    expect(error.showDiff).toBe(true);
  });

  it('fails when the type differs, when events are missing, and when there are extra events', () => {
    const typeError = failureOf(() =>
      given(Account, [opened, deposited(10)]).when((a) => a.withdraw(5)).then([{ type: 'Deposited', data: { amount: 5 } }]),
    );
    expect(typeError.message).toContain('first difference at #0');
    const missing = failureOf(() =>
      given(Account, [opened]).when((a) => a.deposit(1)).then([deposited(1), deposited(1)] as ExpectedEvent<AccountEvent>[]),
    );
    expect(missing.message).toContain('Expected 2 events but the aggregate raised 1 event');
    const extra = failureOf(() =>
      given(Account, [opened])
        .when((a) => {
          a.deposit(1);
          a.close();
        })
        .then([{ type: 'Deposited', data: { amount: 1 } }]),
    );
    expect(extra.message).toContain('first difference at #1');
  });

  it('ignores metadata unless the expectation names it, then matches the named keys', () => {
    const scenario = given(Account, [opened]).when((a) => a.deposit(5, 'corr-1'));
    scenario.then([{ type: 'Deposited', data: { amount: 5 } }]);
    scenario.then([{ type: 'Deposited', data: { amount: 5 }, metadata: { correlationId: 'corr-1' } }]);
    const error = failureOf(() =>
      scenario.then([{ type: 'Deposited', data: { amount: 5 }, metadata: { correlationId: 'corr-2' } }]),
    );
    expect(error.message).toContain('corr-2');
    failureOf(() => scenario.then([{ type: 'Deposited', data: { amount: 5 }, metadata: { causationId: 'x' } }]));
  });

  it('runs the action on a fresh aggregate for every assertion', () => {
    const scenario = given(Account, [opened, deposited(10)]).when((a) => a.withdraw(10));
    const first = scenario.then([{ type: 'Withdrawn', data: { amount: 10 } }]);
    const second = scenario.then([{ type: 'Withdrawn', data: { amount: 10 } }]);
    expect(second).not.toBe(first);
    expect(second.balance).toBe(0);
  });

  it('thenThrows checks the error class and an optional message, and returns the error', () => {
    const error = given(Account, [opened, deposited(10)])
      .when((a) => a.withdraw(11))
      .thenThrows(InsufficientFunds, 'the balance is 10');
    expect(error).toBeInstanceOf(InsufficientFunds);
    expect(error.code).toBe('INSUFFICIENT_FUNDS');
    given(Account, [opened]).when((a) => a.withdraw(1)).thenThrows(InvalidOperationError, /balance is 0/);
    given(Account, [opened, { type: 'AccountClosed', data: null }])
      .when((a) => a.deposit(1))
      .thenThrows(AccountClosedError);
  });

  it('thenThrows fails when nothing is thrown, when another error is thrown, or when the message differs', () => {
    const nothing = failureOf(() => given(Account, [opened]).when((a) => a.deposit(1)).thenThrows(InsufficientFunds));
    expect(nothing.message).toContain('Expected the action to throw InsufficientFunds, but it completed and raised 1 event');
    const other = failureOf(() =>
      given(Account, [opened, deposited(1)]).when((a) => a.withdraw(5)).thenThrows(AccountClosedError),
    );
    expect(other.message).toContain('but it threw InsufficientFunds: Cannot withdraw 5');
    expect(other.cause).toBeInstanceOf(InsufficientFunds);
    const message = failureOf(() =>
      given(Account, [opened]).when((a) => a.withdraw(5)).thenThrows(InsufficientFunds, 'overdraft'),
    );
    expect(message.message).toContain("'overdraft'");
  });

  it('then fails when the action throws, carrying the error as the cause', () => {
    const error = failureOf(() => given(Account).when((a) => a.deposit(1)).then([deposited(1)]));
    expect(error.message).toContain('but it threw AccountClosedError');
    expect(error.cause).toBeInstanceOf(AccountClosedError);
  });

  it('then fails when the aggregate raises an event no store would accept', () => {
    const error = failureOf(() =>
      given(Account, [opened])
        .when((a) => a.stampDeposit())
        .then([{ type: 'Deposited', data: { amount: new Date(0) as unknown as number } }]),
    );
    expect(error.message).toContain('no store would accept');
    expect(error.cause).toBeInstanceOf(InvalidEventError);
  });

  it('supports async actions: then and thenThrows return promises', async () => {
    const scenario = given(Account, [opened, deposited(10)]).when((a) => a.withdrawLater(4));
    const account = await scenario.then([{ type: 'Withdrawn', data: { amount: 4 } }]);
    expect(account.balance).toBe(6);
    await expect(scenario.then([{ type: 'Withdrawn', data: { amount: 5 } }])).rejects.toBeInstanceOf(ScenarioAssertionError);
    const error = await given(Account, [opened]).when((a) => a.withdrawLater(4)).thenThrows(InsufficientFunds);
    expect(error.message).toContain('balance is 0');
    await expect(
      given(Account, [opened, deposited(9)]).when((a) => a.withdrawLater(4)).thenThrows(InsufficientFunds),
    ).rejects.toBeInstanceOf(ScenarioAssertionError);
  });

  it('given events are validated and frozen like stored events', () => {
    expect(() =>
      given(Account, [{ type: 'Deposited', data: { amount: Number.NaN } }]).when(() => undefined).then([]),
    ).toThrow(InvalidEventError);
    const scenario = given(Account, [opened]);
    expect(scenario.aggregate().version).toBe(1);
    expect(scenario.aggregate()).not.toBe(scenario.aggregate());
  });

  it('an aggregate whose fold fails on the given history surfaces that error', () => {
    class Strict extends Aggregate<AccountEvent> {
      protected apply(): void {
        throw new EventOutOfOrderError(this.id, 1, 2);
      }
    }
    expect(() => given(Strict, [opened]).when(() => undefined).then([])).toThrow(EventOutOfOrderError);
  });

  it('awaiting a scenario itself is refused with a clear message', async () => {
    const scenario = given(Account, [opened]).when((a) => a.deposit(1));
    await expect((async () => await (scenario as unknown as PromiseLike<unknown>))()).rejects.toThrow(
      /Do not await a scenario itself/,
    );
  });

  it('is typed by the aggregate events', () => {
    // Compile-time checks only (tsc covers test/); never called, so nothing runs against the helper.
    const typeChecks = () => {
      const scenario = given(Account, [opened]).when((a) => a.deposit(1));
      expectTypeOf(scenario.then).parameter(0).toEqualTypeOf<readonly ExpectedEvent<AccountEvent>[]>();
      expectTypeOf(scenario.then([])).toEqualTypeOf<Account>();
      expectTypeOf(scenario.thenThrows(InsufficientFunds)).toEqualTypeOf<InsufficientFunds>();
      const asyncScenario = given(Account, [opened]).when((a) => a.withdrawLater(0));
      expectTypeOf(asyncScenario.then([])).toEqualTypeOf<Promise<Account>>();
      expectTypeOf(asyncScenario.thenThrows(InsufficientFunds)).toEqualTypeOf<Promise<InsufficientFunds>>();
      // @ts-expect-error: not an event of Account
      given(Account, [{ type: 'Nope', data: {} }]);
      // @ts-expect-error: wrong data for the type
      scenario.then([{ type: 'Deposited', data: { owner: 'x' } }]);
      // @ts-expect-error: thenThrows wants an error class
      scenario.thenThrows('INSUFFICIENT_FUNDS');
    };
    expectTypeOf(typeChecks).toBeFunction();
    // And at run time the typed result really is the aggregate instance.
    const account: Account = given(Account, [opened]).when((a) => a.deposit(1)).then([deposited(1) as ExpectedEvent<AccountEvent>]);
    expect(account).toBeInstanceOf(Account);
    expect(account.balance).toBe(1);
  });
});
