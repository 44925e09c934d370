// The conformance suites under node:test, from the installed package (vitest is not installed
// where this runs; fast-check is, for the property tests). Both capability branches run: the
// in-memory store (atomic multi-stream appends) and a wrapper that declares it cannot do them.
import { describe, it } from 'node:test';
import { CapabilityNotSupportedError, InMemoryEventStore, InMemorySnapshotStore } from 'eventfold';
import { describeEventStoreConformance, describeSnapshotStoreConformance } from 'eventfold/testing';

const framework = { describe, it };

describeEventStoreConformance('InMemoryEventStore under node:test', () => new InMemoryEventStore(), {
  framework,
  createStoreWithLimits: (limits) => new InMemoryEventStore({ limits }),
  propertyRuns: 15,
});

/** Declares atomicMultiStreamAppend: false and refuses an appendMany over several streams. */
class SingleStreamAppendManyStore {
  capabilities = Object.freeze({ atomicMultiStreamAppend: false });
  #inner;
  constructor(options) {
    this.#inner = new InMemoryEventStore(options);
  }
  append(...args) {
    return this.#inner.append(...args);
  }
  async appendMany(appends) {
    const streams = new Set(Array.isArray(appends) ? appends.map((a) => a?.streamId).filter((id) => typeof id === 'string') : []);
    if (streams.size > 1) {
      throw new CapabilityNotSupportedError('atomicMultiStreamAppend', `Cannot append to ${streams.size} streams atomically.`);
    }
    return this.#inner.appendMany(appends);
  }
  readStream(...args) {
    return this.#inner.readStream(...args);
  }
  readAll(...args) {
    return this.#inner.readAll(...args);
  }
  streamVersion(streamId) {
    return this.#inner.streamVersion(streamId);
  }
  headPosition() {
    return this.#inner.headPosition();
  }
  close() {
    return this.#inner.close();
  }
}

describeEventStoreConformance('SingleStreamAppendManyStore under node:test', () => new SingleStreamAppendManyStore(), {
  framework,
  createStoreWithLimits: (limits) => new SingleStreamAppendManyStore({ limits }),
  propertyRuns: 15,
  testTimeoutMs: 120_000,
});

describeSnapshotStoreConformance(
  'InMemorySnapshotStore under node:test',
  () => ({ events: new InMemoryEventStore(), snapshots: new InMemorySnapshotStore() }),
  { framework, propertyRuns: 15 },
);
