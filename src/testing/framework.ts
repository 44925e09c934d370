import type * as FastCheck from 'fast-check';

/**
 * What the conformance suites need from a test framework: `describe` and `it` with the
 * `(name, { timeout }, body)` form. vitest (2 and later) and node:test fit as they are:
 *
 *   import { describe, it } from 'vitest';     // or: from 'node:test'
 *   describeEventStoreConformance('MyStore', createStore, { framework: { describe, it } });
 *
 * Other frameworks take a three-line adapter (see docs/testing.md). The suites use no hooks: each
 * test closes what it opened itself, so a failing test still cleans up.
 */
export interface TestFramework {
  /** Groups tests. The body may be async (the event store suite awaits a capability probe in it). */
  describe(name: string, body: () => void | Promise<void>): unknown;
  /** Declares a test with a timeout in milliseconds. */
  it(name: string, options: { timeout: number }, body: () => Promise<void>): unknown;
}

/** Options every conformance suite takes. */
export interface ConformanceSuiteOptions {
  /** The framework's `describe` and `it` (from 'vitest', 'node:test', or an adapter). Required. */
  readonly framework: TestFramework;
  /** Timeout of each ordinary test in ms. Default 60,000. Raise it for slow networked stores. */
  readonly testTimeoutMs?: number;
  /** Timeout of the slow tests (fast-check properties, the large-stream reads) in ms. Default 300,000. */
  readonly slowTestTimeoutMs?: number;
}

/** The framework with each suite's timeouts applied: `test` for ordinary tests, `slowTest` for slow ones. */
export interface SuiteRegistrar {
  readonly describe: (name: string, body: () => void | Promise<void>) => void;
  readonly test: (name: string, body: () => Promise<void>) => void;
  readonly slowTest: (name: string, body: () => Promise<void>) => void;
}

function positiveTimeout(value: number | undefined, fallback: number, option: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new TypeError(`${option} must be a positive number of milliseconds, got ${String(value)}.`);
  return value;
}

/** Checks the options up front, so a missing framework fails with a message that says what to pass. */
export function registrar(suite: string, options: ConformanceSuiteOptions | undefined): SuiteRegistrar {
  const framework = options?.framework as Partial<TestFramework> | undefined;
  if (typeof framework?.describe !== 'function' || typeof framework.it !== 'function') {
    throw new TypeError(
      `${suite} needs the test framework's describe and it: pass { framework: { describe, it } } ` +
        `imported from 'vitest' or 'node:test' (see docs/testing.md for other frameworks).`,
    );
  }
  const { describe, it } = framework as TestFramework;
  const timeout = positiveTimeout(options?.testTimeoutMs, 60_000, 'testTimeoutMs');
  const slowTimeout = Math.max(timeout, positiveTimeout(options?.slowTestTimeoutMs, 300_000, 'slowTestTimeoutMs'));
  return {
    describe: (name, body) => void describe(name, body),
    test: (name, body) => void it(name, { timeout }, body),
    slowTest: (name, body) => void it(name, { timeout: slowTimeout }, body),
  };
}

export type FastCheckModule = typeof FastCheck;

async function importFastCheck(): Promise<unknown> {
  try {
    return await import('fast-check');
  } catch (error) {
    // jest runs CommonJS tests without vm modules, where import() is refused and require is not.
    if (typeof require === 'function') {
      try {
        return require('fast-check') as unknown;
      } catch {
        // Not there either: report the import's error.
      }
    }
    throw error;
  }
}

/**
 * fast-check is loaded when a property test runs, not when the module is imported, so the
 * given/when/then helpers and the example-based tests need nothing beyond eventfold itself.
 */
export async function loadFastCheck(): Promise<FastCheckModule> {
  try {
    const loaded = (await importFastCheck()) as FastCheckModule & { default?: FastCheckModule };
    return typeof loaded.assert === 'function' ? loaded : (loaded.default as FastCheckModule);
  } catch (error) {
    throw new Error(
      'The property tests of the eventfold conformance suites need fast-check: install it as a dev dependency ' +
        `(npm install -D fast-check). Loading it failed with: ${(error as Error).message}`,
      { cause: error },
    );
  }
}
