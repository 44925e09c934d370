import { Aggregate, type Event } from '../../src/index.js';

type Added = Event<'Added', { n: number }>;

/** A minimal aggregate for store tests: a running total. */
export class Counter extends Aggregate<Added> {
  total = 0;

  add(n: number): void {
    this.raise('Added', { n });
  }

  protected apply(event: Added): void {
    this.total += event.data.n;
  }
}
