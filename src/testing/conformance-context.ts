import type { EventLimits } from '../events/validation.js';
import type { EventStore, EventStoreCapabilities } from '../store/event-store.js';
import { expect } from './expect.js';
import type { SuiteRegistrar } from './framework.js';

/**
 * What every block of the event store conformance suite gets: the framework (with the suite's
 * timeouts), a way to open fresh stores that are closed when the test ends, and the capabilities
 * the store declared. Blocks live in their own files and import only this and the support module.
 */
export interface EventStoreSuite {
  readonly describe: SuiteRegistrar['describe'];
  /** Declares a test; every store it opened is closed when it ends, failed or not. */
  readonly test: SuiteRegistrar['test'];
  /** Like `test`, with the slow-test timeout (fast-check properties, large reads). */
  readonly slowTest: SuiteRegistrar['slowTest'];
  /** A fresh, empty store from the adapter's factory, checked to declare `capabilities`. */
  open(): Promise<EventStore>;
  /** A fresh store with the given limits, or undefined when the adapter cannot make one. */
  openWithLimits(limits: Partial<EventLimits>): Promise<EventStore | undefined>;
  /** What the store under test declared (read from `store.capabilities`). */
  readonly capabilities: EventStoreCapabilities;
  /** Writers racing in the concurrency tests. */
  readonly writers: number;
  /** fast-check runs per property. */
  readonly propertyRuns: number;
}

export interface EventStoreSuiteSettings {
  readonly register: SuiteRegistrar;
  readonly createStore: () => Promise<EventStore> | EventStore;
  readonly createStoreWithLimits: ((limits: Partial<EventLimits>) => Promise<EventStore> | EventStore) | undefined;
  readonly capabilities: EventStoreCapabilities;
  readonly writers: number;
  readonly propertyRuns: number;
}

/** How the suite names a capability branch in test names, so a report shows which one ran. */
export function capabilityLabel(capabilities: EventStoreCapabilities): string {
  return `atomicMultiStreamAppend: ${capabilities.atomicMultiStreamAppend}`;
}

export function createEventStoreSuite(settings: EventStoreSuiteSettings): EventStoreSuite {
  // Tests of one suite run one after another, so one list of open stores is enough.
  const opened: EventStore[] = [];
  const track = async (store: EventStore): Promise<EventStore> => {
    opened.push(store);
    const declared = (store as Partial<EventStore>).capabilities;
    expect(
      declared?.atomicMultiStreamAppend,
      `every store from the factory declares the capabilities the suite runs with (${capabilityLabel(settings.capabilities)})`,
    ).toBe(settings.capabilities.atomicMultiStreamAppend);
    return store;
  };
  const closeAll = async (): Promise<void> => {
    await Promise.all(opened.splice(0).map((store) => store.close()));
  };
  const wrap =
    (body: () => Promise<void>) =>
    async (): Promise<void> => {
      try {
        await body();
      } finally {
        await closeAll();
      }
    };
  return {
    describe: settings.register.describe,
    test: (name, body) => settings.register.test(name, wrap(body)),
    slowTest: (name, body) => settings.register.slowTest(name, wrap(body)),
    open: async () => track(await settings.createStore()),
    openWithLimits: async (limits) => {
      if (settings.createStoreWithLimits === undefined) return undefined;
      return track(await settings.createStoreWithLimits(limits));
    },
    capabilities: settings.capabilities,
    writers: settings.writers,
    propertyRuns: settings.propertyRuns,
  };
}

/**
 * Reads the capabilities from a store made by the factory (then closed), so the suite registers
 * the tests of the branch the store declares. Validates the shape: a store must say true or false.
 */
export async function probeCapabilities(createStore: () => Promise<EventStore> | EventStore): Promise<EventStoreCapabilities> {
  const store = await createStore();
  try {
    return readCapabilities(store.capabilities);
  } finally {
    await store.close();
  }
}

export function readCapabilities(value: unknown): EventStoreCapabilities {
  const atomic = (value as Partial<EventStoreCapabilities> | undefined)?.atomicMultiStreamAppend;
  if (typeof atomic !== 'boolean') {
    throw new TypeError(
      `An EventStore must declare capabilities: { atomicMultiStreamAppend: boolean }, got ${JSON.stringify(value)}.`,
    );
  }
  return { atomicMultiStreamAppend: atomic };
}
