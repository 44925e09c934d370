// A small aggregate for the node:test runs (plain JavaScript, as a user without TypeScript writes it).
import { Aggregate, InvalidOperationError } from 'eventfold';

export class InsufficientFunds extends InvalidOperationError {
  code = 'INSUFFICIENT_FUNDS';
}

export class Account extends Aggregate {
  balance = 0;

  open(owner) {
    this.raise('AccountOpened', { owner });
  }

  deposit(amount) {
    this.raise('Deposited', { amount });
  }

  withdraw(amount) {
    if (amount > this.balance) throw new InsufficientFunds(`Cannot withdraw ${amount}: the balance is ${this.balance}.`);
    this.raise('Withdrawn', { amount });
  }

  apply(event) {
    if (event.type === 'Deposited') this.balance += event.data.amount;
    if (event.type === 'Withdrawn') this.balance -= event.data.amount;
  }
}
