// given/when/then under node:test, from the installed package. Runs where neither vitest nor
// fast-check can be resolved: importing eventfold/testing must need nothing but eventfold.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { given, ScenarioAssertionError } from 'eventfold/testing';
import { Account, InsufficientFunds } from './account.mjs';

const opened = { type: 'AccountOpened', data: { owner: 'ada' } };
const deposited = (amount) => ({ type: 'Deposited', data: { amount } });

describe('given/when/then with node:test', () => {
  it('then() checks the raised events and returns the aggregate', () => {
    const account = given(Account, [opened, deposited(10)])
      .when((a) => a.withdraw(4))
      .then([{ type: 'Withdrawn', data: { amount: 4 } }]);
    assert.equal(account.balance, 6);
    assert.equal(account.uncommittedEvents.length, 1);
  });

  it('thenThrows() checks the error class and message', () => {
    const error = given(Account, [opened]).when((a) => a.withdraw(1)).thenThrows(InsufficientFunds, 'balance is 0');
    assert.equal(error.code, 'INSUFFICIENT_FUNDS');
  });

  it('a wrong expectation fails with ScenarioAssertionError, carrying actual and expected', () => {
    assert.throws(
      () => given(Account, [opened]).when((a) => a.deposit(5)).then([deposited(6)]),
      (error) => error instanceof ScenarioAssertionError && /first difference at #0/.test(error.message),
    );
  });
});
