import { describe, expect, it } from 'vitest';
import { frozenDate, FrozenDate } from '../src/events/frozen-date.js';

describe('FrozenDate (recordedAt)', () => {
  it('reads like a Date and compares equal to one', () => {
    const ms = Date.UTC(2026, 10, 26, 21, 0, 0, 123);
    const d = frozenDate(ms);
    expect(d).toBeInstanceOf(Date);
    expect(d).toBeInstanceOf(FrozenDate);
    expect(d.getTime()).toBe(ms);
    expect(d.toISOString()).toBe('2026-11-26T21:00:00.123Z');
    expect(d).toEqual(new Date(ms));
    expect(JSON.stringify({ d })).toBe('{"d":"2026-11-26T21:00:00.123Z"}');
    expect(new Date(d).getTime()).toBe(ms);
  });

  it('refuses every mutator, leaving the time unchanged', () => {
    const d = frozenDate(1_000);
    const mutators = Object.getOwnPropertyNames(Date.prototype).filter((n) => n.startsWith('set'));
    expect(mutators.length).toBeGreaterThanOrEqual(15);
    for (const name of mutators) {
      expect(() => (d as unknown as Record<string, (v: number) => void>)[name]!(0), name).toThrow(TypeError);
    }
    expect(d.getTime()).toBe(1_000);
    expect(Object.isFrozen(d)).toBe(true);
  });
});
