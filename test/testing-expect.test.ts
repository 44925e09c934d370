import { AssertionError } from 'node:assert';
import { describe, expect, it } from 'vitest';
import { expect as check, looselyEqual } from '../src/testing/expect.js';

/** The error a check throws (the conformance suites rely on these failing when they should). */
function failureOf(action: () => unknown): AssertionError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(AssertionError);
    return error as AssertionError;
  }
  throw new Error('expected the check to fail');
}

describe("the conformance suites' expect", () => {
  it('toEqual: deep equality ignoring undefined properties and object types, nothing else', () => {
    check({ a: 1, b: [1, { c: 'x' }], u: undefined }).toEqual({ a: 1, b: [1, { c: 'x' }] });
    check(new Map([['k', { n: 1 }]])).toEqual(new Map([['k', { n: 1 }]]));
    check(new Date(5)).toEqual(new Date(5));
    const unequal: [unknown, unknown][] = [
      [{ a: 1 }, { a: 2 }],
      [{ a: 1 }, { a: 1, b: 2 }],
      [[1, 2], [1, 2, 3]],
      [[1, 2], { 0: 1, 1: 2 }],
      [new Map([['k', 1]]), new Map([['k', 2]])],
      [new Map([['k', 1]]), new Map([['j', 1]])],
      [new Date(5), new Date(6)],
      [new Set([1]), new Set([2])],
      ['1', 1],
      [null, {}],
      [{ a: null }, { a: undefined }],
    ];
    for (const [a, b] of unequal) {
      expect(looselyEqual(a, b), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`).toBe(false);
      const error = failureOf(() => check(a).toEqual(b));
      expect(error.actual).toBe(a);
      expect(error.expected).toBe(b);
    }
  });

  it('toStrictEqual also checks prototypes, undefined properties and -0', () => {
    check({ a: [1] }).toStrictEqual({ a: [1] });
    failureOf(() => check({ a: 1, u: undefined }).toStrictEqual({ a: 1 }));
    failureOf(() => check(Object.create(null) as object).toStrictEqual({}));
    failureOf(() => check(-0).toStrictEqual(0));
  });

  it('toBe, comparisons, toHaveLength, toContain, toMatch, toBeInstanceOf, defined/undefined', () => {
    check(Number.NaN).toBe(Number.NaN);
    failureOf(() => check({}).toBe({}));
    failureOf(() => check(1).not.toBe(1));
    failureOf(() => check(2).toBeGreaterThan(2));
    failureOf(() => check(1).toBeGreaterThanOrEqual(2));
    failureOf(() => check(3).toBeLessThanOrEqual(2));
    failureOf(() => check('3').toBeGreaterThan(2));
    failureOf(() => check([1, 2]).toHaveLength(3));
    failureOf(() => check('abc').toContain('d'));
    failureOf(() => check([{ a: 1 }]).toContain({ a: 1 }));
    failureOf(() => check('abc').toMatch(/d/));
    failureOf(() => check(new Error('x')).toBeInstanceOf(TypeError));
    failureOf(() => check(undefined).toBeDefined());
    failureOf(() => check(null).toBeUndefined());
    check([1, 2]).toHaveLength(2);
    check('abc').toMatch('b');
  });

  it('toMatchObject: the expected properties, recursively; arrays must match in full', () => {
    const error = Object.assign(new Error('boom'), { code: 'X', details: { index: 1, extra: true } });
    check(error).toMatchObject({ code: 'X', details: { index: 1 } });
    failureOf(() => check(error).toMatchObject({ code: 'Y' }));
    failureOf(() => check(error).toMatchObject({ details: { index: 2 } }));
    failureOf(() => check({ list: [1, 2] }).toMatchObject({ list: [1] }));
    failureOf(() => check({}).toMatchObject({ missing: undefined }));
  });

  it('toThrow and rejects: by class, by message, and failing when nothing is thrown', async () => {
    check(() => {
      throw new TypeError('bad thing');
    }).toThrow(TypeError);
    failureOf(() => check(() => 1).toThrow());
    failureOf(() =>
      check(() => {
        throw new Error('bad');
      }).toThrow(TypeError),
    );
    failureOf(() =>
      check(() => {
        throw new Error('bad');
      }).toThrow(/good/),
    );
    await check(Promise.reject(new RangeError('late'))).rejects.toThrow('late');
    await check(Promise.reject(Object.assign(new Error('x'), { code: 'C' }))).rejects.toMatchObject({ code: 'C' });
    await check(Promise.reject(new Error('y'))).rejects.toSatisfy((e) => (e as Error).message === 'y');
    await expect(check(Promise.reject(new Error('y'))).rejects.toSatisfy(() => false)).rejects.toBeInstanceOf(AssertionError);
    check(4).toSatisfy((n) => n === 4);
    failureOf(() => check(4).toSatisfy((n) => n === 5));
    await expect(check(Promise.resolve(1)).rejects.toThrow()).rejects.toBeInstanceOf(AssertionError);
    await expect(check(Promise.reject(new Error('a'))).rejects.toThrow('b')).rejects.toBeInstanceOf(AssertionError);
  });

  it('fail, a message prefix, and poll (which gives up at its timeout)', async () => {
    expect(failureOf(() => check.fail('stop here')).message).toBe('stop here');
    expect(failureOf(() => check(1, 'the count').toBe(2)).message).toMatch(/^the count: expected 1 to be 2/);
    let n = 0;
    await check.poll(() => ++n, { interval: 1 }).toBe(3);
    expect(n).toBe(3);
    await expect(check.poll(() => 'stuck', { timeout: 30, interval: 5 }).toBe('moved')).rejects.toBeInstanceOf(AssertionError);
  });
});
