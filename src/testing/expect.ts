import { AssertionError } from 'node:assert';
import { inspect, isDeepStrictEqual } from 'node:util';

/**
 * The small `expect` the conformance suites assert with. It depends on nothing but Node, so the
 * suites run under any test framework (vitest, node:test, …): failures are node's
 * `AssertionError`s carrying `actual` and `expected`, which every runner reports with a diff.
 * Semantics follow vitest's matchers of the same names, for the subset the suites use.
 */

type ErrorClass = abstract new (...args: never[]) => Error;
type ThrowExpectation = ErrorClass | string | RegExp | undefined;

export interface Matchers {
  /** `Object.is` equality. */
  toBe(expected: unknown): void;
  /** Recursive equality of values; ignores object types and properties that are `undefined`. */
  toEqual(expected: unknown): void;
  /** Recursive equality that also checks prototypes, `undefined` properties and `-0`. */
  toStrictEqual(expected: unknown): void;
  /** Every property of `expected` (recursively) is present and equal in the actual value. */
  toMatchObject(expected: object): void;
  toHaveLength(length: number): void;
  toBeGreaterThan(n: number): void;
  toBeGreaterThanOrEqual(n: number): void;
  toBeLessThanOrEqual(n: number): void;
  toBeInstanceOf(type: abstract new (...args: never[]) => unknown): void;
  toBeDefined(): void;
  toBeUndefined(): void;
  /** A string contains the substring, or an array contains the item (`Object.is`). */
  toContain(item: unknown): void;
  toMatch(pattern: RegExp | string): void;
  /** The actual value is a function that throws (an instance of the class / a matching message). */
  toThrow(expected?: ThrowExpectation): void;
  /** `predicate(actual)` returns true. */
  toSatisfy(predicate: (value: unknown) => boolean): void;
}

export interface AsyncMatchers {
  toThrow(expected?: ThrowExpectation): Promise<void>;
  toMatchObject(expected: object): Promise<void>;
  toSatisfy(predicate: (value: unknown) => boolean): Promise<void>;
}

export interface Expectation extends Matchers {
  readonly not: Pick<Matchers, 'toBe'>;
  /** The actual value is a promise that must reject; the matcher applies to the reason. */
  readonly rejects: AsyncMatchers;
}

export interface PollOptions {
  /** Default 10,000 ms. */
  readonly timeout?: number;
  /** Default 20 ms. */
  readonly interval?: number;
}

export interface Expect {
  (actual: unknown, message?: string): Expectation;
  fail(message: string): never;
  /** Calls `read` until its value passes the matcher or the timeout passes. */
  poll(read: () => unknown, options?: PollOptions): { toBe(expected: unknown): Promise<void> };
}

const show = (value: unknown): string => inspect(value, { depth: 6, breakLength: 120 });

function fail(message: string, actual?: unknown, expected?: unknown, operator = 'fail'): never {
  throw new AssertionError({ message, actual, expected, operator });
}

/** vitest's `toEqual`: types of plain objects are ignored, `undefined` properties too. */
export function looselyEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (a instanceof Date || b instanceof Date) {
    return a instanceof Date && b instanceof Date && Object.is(a.getTime(), b.getTime());
  }
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const other = b as unknown[];
    return a.length === other.length && a.every((item, i) => looselyEqual(item, other[i]));
  }
  if (a instanceof Map || b instanceof Map) {
    if (!(a instanceof Map && b instanceof Map) || a.size !== b.size) return false;
    for (const [key, value] of a) {
      if (!b.has(key) || !looselyEqual(value, b.get(key))) return false;
    }
    return true;
  }
  if (a instanceof Set || b instanceof Set) {
    if (!(a instanceof Set && b instanceof Set) || a.size !== b.size) return false;
    return [...a].every((item) => [...b].some((candidate) => looselyEqual(item, candidate)));
  }
  const keysOf = (o: object): string[] => Object.keys(o).filter((k) => (o as Record<string, unknown>)[k] !== undefined);
  const aKeys = keysOf(a);
  const bKeys = keysOf(b);
  if (aKeys.length !== bKeys.length) return false;
  return aKeys.every(
    (key) => Object.hasOwn(b, key) && looselyEqual((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]),
  );
}

function matchesObject(actual: unknown, expected: unknown): boolean {
  if (typeof expected !== 'object' || expected === null || expected instanceof Date) return looselyEqual(actual, expected);
  if (typeof actual !== 'object' || actual === null) return false;
  if (Array.isArray(expected)) {
    return Array.isArray(actual) && actual.length === expected.length && expected.every((item, i) => matchesObject(actual[i], item));
  }
  return Object.keys(expected).every(
    (key) => key in actual && matchesObject((actual as Record<string, unknown>)[key], (expected as Record<string, unknown>)[key]),
  );
}

function describeThrowExpectation(expected: ThrowExpectation): string {
  if (expected === undefined) return 'an error';
  if (typeof expected === 'function') return `an instance of ${expected.name}`;
  return `an error whose message matches ${show(expected)}`;
}

function checkThrown(error: unknown, expected: ThrowExpectation, prefix: string): void {
  if (expected === undefined) return;
  if (typeof expected === 'function') {
    if (!(error instanceof expected)) {
      fail(`${prefix}expected ${describeThrowExpectation(expected)}, got ${show(error)}`, error, expected.name, 'toThrow');
    }
    return;
  }
  const message = error instanceof Error ? error.message : String(error);
  const matches = typeof expected === 'string' ? message.includes(expected) : expected.test(message);
  if (!matches) fail(`${prefix}expected an error message matching ${show(expected)}, got ${show(message)}`, message, expected, 'toThrow');
}

function matchers(actual: unknown, prefix: string): Matchers {
  const compare = (ok: boolean, what: string, expected: unknown, operator: string): void => {
    if (!ok) fail(`${prefix}expected ${show(actual)} ${what} ${show(expected)}`, actual, expected, operator);
  };
  const number = (matcher: string): number => {
    if (typeof actual !== 'number' && typeof actual !== 'bigint') fail(`${prefix}${matcher} needs a number, got ${show(actual)}`);
    return actual as number;
  };
  return {
    toBe: (expected) => compare(Object.is(actual, expected), 'to be', expected, 'toBe'),
    toEqual: (expected) => compare(looselyEqual(actual, expected), 'to equal', expected, 'toEqual'),
    toStrictEqual: (expected) => compare(isDeepStrictEqual(actual, expected), 'to strictly equal', expected, 'toStrictEqual'),
    toMatchObject: (expected) => compare(matchesObject(actual, expected), 'to match', expected, 'toMatchObject'),
    toHaveLength: (length) => {
      const actualLength = (actual as { length?: unknown } | null | undefined)?.length;
      if (actualLength !== length) fail(`${prefix}expected length ${length}, got ${show(actualLength)}: ${show(actual)}`, actualLength, length, 'toHaveLength');
    },
    toBeGreaterThan: (n) => compare(number('toBeGreaterThan') > n, 'to be greater than', n, '>'),
    toBeGreaterThanOrEqual: (n) => compare(number('toBeGreaterThanOrEqual') >= n, 'to be at least', n, '>='),
    toBeLessThanOrEqual: (n) => compare(number('toBeLessThanOrEqual') <= n, 'to be at most', n, '<='),
    toBeInstanceOf: (type) => compare(actual instanceof type, 'to be an instance of', type.name, 'instanceof'),
    toBeDefined: () => compare(actual !== undefined, 'to be', 'defined', 'toBeDefined'),
    toBeUndefined: () => compare(actual === undefined, 'to be', undefined, 'toBeUndefined'),
    toContain: (item) => {
      const ok = typeof actual === 'string' ? typeof item === 'string' && actual.includes(item) : Array.isArray(actual) && actual.some((x) => Object.is(x, item));
      compare(ok, 'to contain', item, 'toContain');
    },
    toMatch: (pattern) => {
      const ok = typeof actual === 'string' && (typeof pattern === 'string' ? actual.includes(pattern) : pattern.test(actual));
      compare(ok, 'to match', pattern, 'toMatch');
    },
    toThrow: (expected) => {
      if (typeof actual !== 'function') fail(`${prefix}toThrow needs a function, got ${show(actual)}`);
      try {
        (actual as () => unknown)();
      } catch (error) {
        checkThrown(error, expected, prefix);
        return;
      }
      fail(`${prefix}expected the function to throw ${describeThrowExpectation(expected)}, but it returned`);
    },
    toSatisfy: (predicate) => compare(predicate(actual), 'to satisfy', predicate.toString(), 'toSatisfy'),
  };
}

async function rejection(actual: unknown, prefix: string): Promise<unknown> {
  try {
    await actual;
  } catch (error) {
    return error;
  }
  return fail(`${prefix}expected the promise to reject, but it resolved`);
}

export const expect: Expect = Object.assign(
  (actual: unknown, message?: string): Expectation => {
    const prefix = message === undefined ? '' : `${message}: `;
    return {
      ...matchers(actual, prefix),
      not: {
        toBe: (expected) => {
          if (Object.is(actual, expected)) fail(`${prefix}expected a value other than ${show(expected)}`, actual, expected, 'notStrictEqual');
        },
      },
      rejects: {
        toThrow: async (expected) => checkThrown(await rejection(actual, prefix), expected, prefix),
        toMatchObject: async (expected) => matchers(await rejection(actual, prefix), prefix).toMatchObject(expected),
        toSatisfy: async (predicate) => matchers(await rejection(actual, prefix), prefix).toSatisfy(predicate),
      },
    };
  },
  {
    fail: (message: string): never => fail(message),
    poll: (read: () => unknown, options: PollOptions = {}) => ({
      async toBe(expected: unknown): Promise<void> {
        const deadline = Date.now() + (options.timeout ?? 10_000);
        let last = await read();
        while (!Object.is(last, expected)) {
          if (Date.now() > deadline) fail(`expected the polled value to become ${show(expected)}, it is still ${show(last)}`, last, expected, 'poll');
          await new Promise((resolve) => setTimeout(resolve, options.interval ?? 20));
          last = await read();
        }
      },
    }),
  },
);
