// The same entry through require(): CommonJS users load eventfold/testing without vitest too.
const assert = require('node:assert/strict');
const { it } = require('node:test');
const { Aggregate } = require('eventfold');
const { given } = require('eventfold/testing');

class Counter extends Aggregate {
  total = 0;
  add(by) {
    this.raise('Added', { by });
  }
  apply(event) {
    this.total += event.data.by;
  }
}

it('given/when/then through require()', () => {
  const counter = given(Counter, [{ type: 'Added', data: { by: 2 } }]).when((c) => c.add(3)).then([{ type: 'Added', data: { by: 3 } }]);
  assert.equal(counter.total, 5);
});
