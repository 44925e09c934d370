import { describe, expect, it } from 'vitest';
import { InMemoryEventStore } from '../src/index.js';
import type { EventStore } from '../src/store/event-store.js';
import { describeEventStoreConformance, type TestFramework } from '../src/testing/index.js';
import { NonAtomicEventStore } from './fixtures/non-atomic-event-store.js';
import { recordingFramework } from './fixtures/recording-framework.js';

// The false branch of the capability, run for real: a store that cannot append to several streams
// atomically passes the suite by refusing such calls and writing nothing.
describeEventStoreConformance('NonAtomicEventStore (test wrapper over InMemoryEventStore)', () => new NonAtomicEventStore(), {
  framework: { describe, it },
  createStoreWithLimits: (limits) => new NonAtomicEventStore({ limits }),
});

// The same, with the capabilities declared instead of probed (for frameworks whose describe cannot wait).
describeEventStoreConformance('NonAtomicEventStore, capabilities declared', () => new NonAtomicEventStore({ pageSize: 7 }), {
  framework: { describe, it },
  capabilities: { atomicMultiStreamAppend: false },
  propertyRuns: 10,
});

/** Runs the whole suite against `create` with a recording framework; the declared names and the failures. */
async function runSuite(
  create: () => EventStore,
  extra: { capabilities?: { atomicMultiStreamAppend: boolean } } = {},
): Promise<{ names: string[]; failures: Map<string, Error> }> {
  const recorder = recordingFramework();
  describeEventStoreConformance('probe', create, { framework: recorder.framework, propertyRuns: 5, concurrentWriters: 4, ...extra });
  const names = (await recorder.collected()).map((t) => t.name);
  return { names, failures: await recorder.runAll() };
}

const failed = (failures: Map<string, Error>, fragment: string): string[] => [...failures.keys()].filter((name) => name.includes(fragment));

describe('describeEventStoreConformance reads the capabilities and tests the branch the store declares', () => {
  it('names the branch it runs in the test names, and runs each branch only where it applies', async () => {
    const atomic = await runSuite(() => new InMemoryEventStore());
    const refusing = await runSuite(() => new NonAtomicEventStore());
    expect(atomic.failures).toEqual(new Map());
    expect(refusing.failures).toEqual(new Map());

    expect(atomic.names).toContain('EventStore conformance: probe > declares its capabilities (atomicMultiStreamAppend: true)');
    expect(refusing.names).toContain('EventStore conformance: probe > declares its capabilities (atomicMultiStreamAppend: false)');
    const appendMany = (names: string[], flag: boolean) => names.filter((n) => n.includes(`appendMany (atomicMultiStreamAppend: ${flag})`));
    expect(appendMany(atomic.names, true).length).toBeGreaterThan(5);
    expect(appendMany(atomic.names, false)).toEqual([]);
    expect(appendMany(refusing.names, false).length).toBeGreaterThan(5);
    expect(appendMany(refusing.names, true)).toEqual([]);
    expect(atomic.names.some((n) => n.includes('appends to several streams atomically'))).toBe(true);
    expect(refusing.names.some((n) => n.includes('appends to several streams atomically'))).toBe(false);
    expect(refusing.names.filter((n) => n.includes('with CapabilityNotSupportedError and writes nothing'))).toHaveLength(5);
    expect(refusing.names.some((n) => n.includes('properties (atomicMultiStreamAppend: false)'))).toBe(true);
    // Nothing else is dropped: both branches declare the same tests outside appendMany and the properties.
    const common = (names: string[]) => names.filter((n) => !n.includes('appendMany (') && !n.includes('properties (') && !n.includes('declares its capabilities'));
    expect(common(refusing.names)).toEqual(common(atomic.names));
  });

  it('fails a store that declares the capability false but appends to several streams anyway', async () => {
    const { failures } = await runSuite(() => new NonAtomicEventStore({}, 'writes-multi-stream'));
    expect(failed(failures, 'refuses two new streams with CapabilityNotSupportedError')).toHaveLength(1);
    expect(failed(failures, 'multi-stream appendMany is refused and changes nothing')).toHaveLength(1);
  });

  it('fails a store that refuses only after writing part of the call', async () => {
    const { failures } = await runSuite(() => new NonAtomicEventStore({}, 'writes-first-then-refuses'));
    const refusals = failed(failures, 'with CapabilityNotSupportedError and writes nothing');
    expect(refusals.length).toBeGreaterThanOrEqual(4);
    expect(failures.get(refusals[0]!)?.message).toMatch(/to (strictly )?equal|to be/);
  });

  it('fails a store that reports a stale version as a conflict instead of refusing the call', async () => {
    const { failures } = await runSuite(() => new NonAtomicEventStore({}, 'checks-versions-first'));
    const stale = failed(failures, 'stale expected version');
    expect(stale).toHaveLength(1);
    expect(failures.get(stale[0]!)?.message).toContain('expected CapabilityNotSupportedError');
  });

  it('fails a store whose capabilities differ from the ones declared to the suite', async () => {
    const { failures, names } = await runSuite(() => new InMemoryEventStore(), { capabilities: { atomicMultiStreamAppend: false } });
    expect(failures.size).toBe(names.length);
    expect([...failures.values()][0]!.message).toContain('declares the capabilities the suite runs with (atomicMultiStreamAppend: false)');
  });

  it('refuses a store without capabilities, and a call without a framework, with messages that say what to do', async () => {
    const recorder = recordingFramework();
    const bare = new InMemoryEventStore() as Partial<EventStore>;
    Object.defineProperty(bare, 'capabilities', { value: undefined });
    describeEventStoreConformance('bare', () => bare as EventStore, { framework: recorder.framework });
    await expect(recorder.collected()).rejects.toThrow(/must declare capabilities: \{ atomicMultiStreamAppend: boolean \}/);

    expect(() => describeEventStoreConformance('none', () => new InMemoryEventStore(), {} as never)).toThrow(
      /needs the test framework's describe and it: pass \{ framework: \{ describe, it \} \}/,
    );
    expect(() =>
      describeEventStoreConformance('bad timeout', () => new InMemoryEventStore(), { framework: recorder.framework, testTimeoutMs: 0 }),
    ).toThrow(/testTimeoutMs must be a positive number/);
  });

  it('with declared capabilities, declares every test synchronously (as jest and mocha require), without a probe store', () => {
    let created = 0;
    const names: string[] = [];
    const synchronousOnly: TestFramework = {
      describe(name, body) {
        const result = body();
        if (result instanceof Promise) throw new Error(`describe('${name}') returned a promise`);
      },
      it(name) {
        names.push(name);
      },
    };
    describeEventStoreConformance(
      'sync',
      () => {
        created++;
        return new NonAtomicEventStore();
      },
      { framework: synchronousOnly, capabilities: { atomicMultiStreamAppend: false } },
    );
    expect(created).toBe(0);
    expect(names).toContain('declares its capabilities (atomicMultiStreamAppend: false)');
    expect(names.length).toBeGreaterThan(150);
  });

  it('gives every test the suite timeout, and the slow ones the slow timeout', async () => {
    const recorder = recordingFramework();
    describeEventStoreConformance('timeouts', () => new InMemoryEventStore(), {
      framework: recorder.framework,
      testTimeoutMs: 123_000,
      slowTestTimeoutMs: 456_000,
    });
    const tests = await recorder.collected();
    const slow = tests.filter((t) => t.timeout === 456_000).map((t) => t.name);
    expect(slow).toHaveLength(3);
    expect(slow.some((n) => n.includes('pages through large streams'))).toBe(true);
    expect(tests.filter((t) => t.timeout !== 456_000).every((t) => t.timeout === 123_000)).toBe(true);
  });
});

// Compile-time: node:test's and vitest's describe/it fit the suites' framework option as they are.
type NodeTest = typeof import('node:test');
type Vitest = typeof import('vitest');
export const fromNodeTest = (m: NodeTest): TestFramework => ({ describe: m.describe, it: m.it });
export const fromVitest = (m: Vitest): TestFramework => ({ describe: m.describe, it: m.it });
