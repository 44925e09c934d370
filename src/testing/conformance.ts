import type { EventLimits } from '../events/validation.js';
import type { EventStore, EventStoreCapabilities } from '../store/event-store.js';
import { describeAppendCases } from './conformance-append.js';
import { describeAppendManyCases } from './conformance-append-many.js';
import { describeBadInputCases } from './conformance-bad-input.js';
import { capabilityLabel, createEventStoreSuite, probeCapabilities, readCapabilities } from './conformance-context.js';
import { describeConcurrencyCases } from './conformance-concurrency.js';
import { describeConformanceProperties } from './conformance-properties.js';
import { describeReadCases } from './conformance-reads.js';
import { expect } from './expect.js';
import { registrar, type ConformanceSuiteOptions } from './framework.js';

/**
 * Makes the store under test. Called for every test (and once up front to read the store's
 * capabilities): each call must return a fresh, empty store isolated from every other one (its
 * own database file, schema, JetStream stream, …). The suite closes each store when its test ends.
 */
export type EventStoreFactory = () => Promise<EventStore> | EventStore;

export interface EventStoreConformanceOptions extends ConformanceSuiteOptions {
  /**
   * Creates a fresh, empty store with the given limits (the stores' `limits` option). With it the
   * size-limit tests use small limits; without it they probe the default limits.
   */
  readonly createStoreWithLimits?: (limits: Partial<EventLimits>) => Promise<EventStore> | EventStore;
  /** fast-check runs per property (default 30). Keep it modest for networked databases. */
  readonly propertyRuns?: number;
  /** Writers racing in the concurrency tests (default 10). */
  readonly concurrentWriters?: number;
  /**
   * The capabilities the store declares. By default the suite reads `store.capabilities` from a
   * store made by the factory before it declares its tests (vitest and node:test allow that);
   * give them here for a framework whose `describe` cannot wait. Either way every store the
   * factory returns must declare exactly these, or its tests fail.
   */
  readonly capabilities?: EventStoreCapabilities;
}

/**
 * The suite every `EventStore` adapter must pass, in any test framework:
 *
 *   import { describe, it } from 'node:test'; // or 'vitest'
 *   describeEventStoreConformance('MyStore', () => MyStore.open(freshName()), { framework: { describe, it } });
 *
 * It tests what the store declares in `capabilities`, never skipping silently: where
 * `atomicMultiStreamAppend` holds, `appendMany` must be atomic across streams; where it does not,
 * an `appendMany` over two or more streams must be refused with `CapabilityNotSupportedError` and
 * write nothing, while one over a single stream works. Test names say which branch ran.
 *
 * Contract it checks beyond the port's types: `close()` is idempotent; errors carry the codes of
 * `src/errors.ts`; positions are strictly increasing (gaps allowed) and start at 1 or above.
 */
export function describeEventStoreConformance(
  name: string,
  createStore: EventStoreFactory,
  options: EventStoreConformanceOptions,
): void {
  const register = registrar('describeEventStoreConformance', options);
  const declared = options.capabilities === undefined ? undefined : readCapabilities(options.capabilities);

  const declareTests = (capabilities: EventStoreCapabilities): void => {
    const suite = createEventStoreSuite({
      register,
      createStore,
      createStoreWithLimits: options.createStoreWithLimits,
      capabilities,
      writers: options.concurrentWriters ?? 10,
      propertyRuns: options.propertyRuns ?? 30,
    });

    suite.test(`declares its capabilities (${capabilityLabel(capabilities)})`, async () => {
      const store = await suite.open();
      expect(typeof store.capabilities.atomicMultiStreamAppend).toBe('boolean');
      expect(readCapabilities(store.capabilities)).toEqual(capabilities);
    });

    describeAppendCases(suite);
    describeReadCases(suite);
    describeAppendManyCases(suite);
    describeConcurrencyCases(suite);
    describeBadInputCases(suite);
    describeConformanceProperties(suite);
  };

  // Declared capabilities keep the describe body synchronous (jest and mocha require that);
  // otherwise the body waits for a probe store to say what it can do.
  register.describe(
    `EventStore conformance: ${name}`,
    declared !== undefined
      ? () => declareTests(declared)
      : async () => declareTests(await probeCapabilities(createStore)),
  );
}
