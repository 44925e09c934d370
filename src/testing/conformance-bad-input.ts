import type { AnyEvent } from '../events/types.js';
import { MAX_STREAM_ID_LENGTH } from '../events/validation.js';
import type { EventStore } from '../store/event-store.js';
import type { ExpectedVersion } from '../store/expected-version.js';
import type { EventStoreSuite } from './conformance-context.js';
import {
  expectFailure,
  expectFailureOf,
  orRefused,
  expectUnchanged,
  numbered,
  observe,
} from './conformance-support.js';
import { describeSizeLimitCases } from './conformance-limits.js';
import { expect } from './expect.js';

/** Bad input is rejected with a typed error before anything is written. */
export function describeBadInputCases(suite: EventStoreSuite): void {
  suite.describe('bad input is rejected before anything is written', () => {
    const seeded = async (): Promise<EventStore> => {
      const store = await suite.open();
      await store.append('s', numbered(2, 'seed'), { expectedVersion: 'no-stream' });
      return store;
    };
    const streams = ['s', 'fresh'];

    const badIds: [string, unknown][] = [
      ['empty', ''],
      ['too long', 'x'.repeat(MAX_STREAM_ID_LENGTH + 1)],
      ['with a newline', 'a\nb'],
      ['with a NUL', 'a\u0000b'],
      ['with DEL', 'a\u007f'],
      ['with a lone surrogate', 'a\ud800'],
      ['with leading whitespace', ' s'],
      ['with trailing whitespace', 's '],
      ['a number', 42],
      ['null', null],
      ['undefined', undefined],
      ['an object', { id: 's' }],
    ];
    for (const [label, streamId] of badIds) {
      suite.test(`rejects a stream id that is ${label}`, async () => {
        const store = await seeded();
        const before = await observe(store, streams);
        const id = streamId as string;
        await expectFailure(() => store.append(id, numbered(1), { expectedVersion: 'any' }), 'InvalidStreamIdError');
        await expectFailureOf(
          () =>
            store.appendMany([
              { streamId: 'fresh', events: numbered(1), expectedVersion: 'any' },
              { streamId: id, events: numbered(1), expectedVersion: 'any' },
            ]),
          orRefused(suite, 'InvalidStreamIdError'),
        );
        await expectFailure(() => store.appendMany([{ streamId: id, events: numbered(1), expectedVersion: 'any' }]), 'InvalidStreamIdError');
        await expectFailure(() => store.readStream(id).toArray(), 'InvalidStreamIdError');
        await expectFailure(() => store.streamVersion(id), 'InvalidStreamIdError');
        await expectUnchanged(store, before);
      });
    }

    // Earlier versions stored such ids: new streams are refused, lookups are not (see docs/concepts.md).
    const newStreamOnly: [string, string][] = [
      ['a C1 control', 'a\u0085b'],
      ['a bidi override', 'user-\u202egnp.exe'],
      ['a zero-width space', 'user\u200b-1'],
    ];
    for (const [label, id] of newStreamOnly) {
      suite.test(`refuses a new stream whose id holds ${label}, and looks such an id up as any other`, async () => {
        const store = await seeded();
        const before = await observe(store, streams);
        for (const expectedVersion of ['any', 'no-stream', 0] as const) {
          await expectFailure(() => store.append(id, numbered(1), { expectedVersion }), 'InvalidStreamIdError');
          await expectFailure(() => store.appendMany([{ streamId: id, events: numbered(1), expectedVersion }]), 'InvalidStreamIdError');
        }
        // Appends that require the stream to exist fail on the version check: nothing is created.
        await expectFailure(() => store.append(id, numbered(1), { expectedVersion: 'stream-exists' }), 'ConcurrencyError');
        await expectFailure(() => store.append(id, numbered(1), { expectedVersion: 1 }), 'ConcurrencyError');
        expect(await store.streamVersion(id)).toBe(0);
        await expectFailure(() => store.readStream(id).toArray(), 'StreamNotFoundError');
        await expectUnchanged(store, before);
      });
    }

    const badEvents: [string, unknown][] = [
      ['null', null],
      ['a number', 42],
      ['a string', 'UserRegistered'],
      ['an event without a type', { data: {} }],
      ['an event with an empty type', { type: '', data: {} }],
      ['an event with a non-string type', { type: 7, data: {} }],
      ['an event with an over-long type', { type: 'T'.repeat(257), data: {} }],
      ['an event with a NUL in its type', { type: 'T\u0000', data: {} }],
      ['an event without data', { type: 'T' }],
      ['an event with undefined data', { type: 'T', data: undefined }],
      ['an event with array metadata', { type: 'T', data: {}, metadata: ['x'] }],
      ['an event with string metadata', { type: 'T', data: {}, metadata: 'x' }],
      ['an event with null metadata', { type: 'T', data: {}, metadata: null }],
    ];
    const cycle: Record<string, unknown> = { a: 1 };
    cycle['self'] = cycle;
    const arrayCycle: unknown[] = [1];
    arrayCycle.push({ back: arrayCycle });
    const badData: [string, unknown][] = [
      ['a function', () => 1],
      ['a nested function', { f: () => 1 }],
      ['a symbol', Symbol('s')],
      ['a symbol key', { [Symbol('k')]: 1 }],
      ['a BigInt', 10n],
      ['a nested BigInt', { n: [1, 2n] }],
      ['a cycle', cycle],
      ['a cycle through an array', arrayCycle],
      ['a nested undefined', { a: undefined }],
      ['an undefined array item', [1, undefined]],
      ['NaN', { n: Number.NaN }],
      ['Infinity', { n: Number.POSITIVE_INFINITY }],
      ['-Infinity', [Number.NEGATIVE_INFINITY]],
      ['a Date', { at: new Date(0) }],
      ['a Map', new Map([['k', 1]])],
      ['a Set', { s: new Set([1]) }],
      ['a class instance', { v: new (class Money { amount = 1 })() }],
      ['a boxed string', { s: Object('x') as unknown }],
      ['a string with a NUL character', { s: 'a\u0000b' }],
      ['a lone surrogate', { s: 'x\ud800y' }],
      ['a key with a NUL character', { ['k\u0000']: 1 }],
    ];
    const invalid: [string, unknown][] = [
      ...badEvents,
      ...badData.map(([label, data]): [string, unknown] => [`data with ${label}`, { type: 'T', data }]),
      ...badData
        .filter(([, data]) => typeof data === 'object' && data !== null && !(data instanceof Map))
        .map(([label, data]): [string, unknown] => [`metadata with ${label}`, { type: 'T', data: {}, metadata: data }]),
    ];
    for (const [label, bad] of invalid) {
      suite.test(`rejects ${label}`, async () => {
        const store = await seeded();
        const before = await observe(store, streams);
        const good = numbered(1, 'good')[0]!;
        const events = [good, bad, good] as AnyEvent[];
        const error = await expectFailure(() => store.append('s', events, { expectedVersion: 2 }), 'InvalidEventError');
        expect(error.details.index).toBe(1);
        // Bad input is reported even when the expected version is wrong as well.
        await expectFailure(() => store.append('s', events, { expectedVersion: 7 }), 'InvalidEventError');
        await expectFailureOf(
          () =>
            store.appendMany([
              { streamId: 'fresh', events: [good], expectedVersion: 'no-stream' },
              { streamId: 's', events, expectedVersion: 2 },
            ]),
          orRefused(suite, 'InvalidEventError'),
        );
        await expectFailure(() => store.appendMany([{ streamId: 's', events, expectedVersion: 2 }]), 'InvalidEventError');
        await expectUnchanged(store, before);
      });
    }

    suite.test('rejects events that are not an array', async () => {
      const store = await seeded();
      const before = await observe(store, streams);
      for (const events of [undefined, null, { type: 'T', data: {} }, 'events']) {
        await expectFailure(
          () => store.append('s', events as unknown as AnyEvent[], { expectedVersion: 'any' }),
          'InvalidEventError',
        );
      }
      await expectUnchanged(store, before);
    });

    const badExpected: [string, unknown][] = [
      ['negative', -1],
      ['fractional', 1.5],
      ['NaN', Number.NaN],
      ['Infinity', Number.POSITIVE_INFINITY],
      ['a numeric string', '2'],
      ['an unknown keyword', 'latest'],
      ['null', null],
      ['missing', undefined],
    ];
    for (const [label, expectedVersion] of badExpected) {
      suite.test(`rejects an expectedVersion that is ${label}`, async () => {
        const store = await seeded();
        const before = await observe(store, streams);
        const expected = expectedVersion as ExpectedVersion;
        await expectFailure(() => store.append('s', numbered(1), { expectedVersion: expected }), 'InvalidArgumentError');
        await expectFailure(
          () => store.appendMany([{ streamId: 'fresh', events: numbered(1), expectedVersion: expected }]),
          'InvalidArgumentError',
        );
        await expectUnchanged(store, before);
      });
    }

    suite.test('rejects an append without options', async () => {
      const store = await seeded();
      const before = await observe(store, streams);
      const append = store.append.bind(store) as (...args: unknown[]) => Promise<unknown>;
      await expectFailure(() => append('s', numbered(1)), 'InvalidArgumentError');
      await expectUnchanged(store, before);
    });

    const badStreamReads: [string, Record<string, unknown>][] = [
      ['a negative fromVersion', { fromVersion: -1 }],
      ['a fractional fromVersion', { fromVersion: 1.5 }],
      ['a NaN fromVersion', { fromVersion: Number.NaN }],
      ['a string fromVersion', { fromVersion: '1' }],
      ['a negative toVersion', { toVersion: -2 }],
      ['an infinite toVersion', { toVersion: Number.POSITIVE_INFINITY }],
      ['a negative limit', { limit: -1 }],
      ['a fractional limit', { limit: 0.5 }],
      ['a negative fromVersion backwards', { backwards: true, fromVersion: -1 }],
    ];
    for (const [label, readOptions] of badStreamReads) {
      suite.test(`rejects a readStream with ${label}`, async () => {
        const store = await seeded();
        await expectFailure(() => store.readStream('s', readOptions).toArray(), 'InvalidArgumentError');
        await expectFailure(() => store.readStream('missing', readOptions).toArray(), 'InvalidArgumentError');
      });
    }

    const badLogReads: [string, Record<string, unknown>][] = [
      ['a negative fromPosition', { fromPosition: -1 }],
      ['a fractional fromPosition', { fromPosition: 2.5 }],
      ['a string fromPosition', { fromPosition: '3' }],
      ['a negative limit', { limit: -5 }],
      ['a NaN limit', { limit: Number.NaN }],
    ];
    for (const [label, readOptions] of badLogReads) {
      suite.test(`rejects a readAll with ${label}`, async () => {
        const store = await seeded();
        await expectFailure(() => store.readAll(readOptions).toArray(), 'InvalidArgumentError');
      });
    }

    describeSizeLimitCases(suite);
  });
}
