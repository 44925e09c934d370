import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BatchTooLargeError,
  InMemoryEventStore,
  InvalidEventError,
  InvalidStreamIdError,
  assertReadableStreamId,
  assertValidStreamId,
  type AnyEvent,
} from '../src/index.js';
import { prepareEvents } from '../src/events/validation.js';

function rejection(events: unknown, limits?: Parameters<typeof prepareEvents>[2]): InvalidEventError {
  try {
    prepareEvents('s-1', events as AnyEvent[], limits);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidEventError);
    return error as InvalidEventError;
  }
  throw new Error('expected prepareEvents to throw');
}

class Money {
  constructor(readonly cents: number) {}
}

const cyclic: Record<string, unknown> = { a: 1 };
cyclic['self'] = cyclic;
const cyclicArray: unknown[] = [1];
cyclicArray.push({ back: cyclicArray });
const withSymbolKey = { ok: 1, [Symbol('s')]: 2 };

describe('prepareEvents rejects what is not JSON, naming the path', () => {
  it.each<[string, unknown, string]>([
    ['a function', { f: () => 1 }, 'data.f'],
    ['a symbol value', { s: Symbol('x') }, 'data.s'],
    ['a symbol key', withSymbolKey, 'data'],
    ['a BigInt', { n: { deep: 10n } }, 'data.n.deep'],
    ['a cycle in an object', cyclic, 'data.self'],
    ['a cycle through an array', cyclicArray, 'data[1].back'],
    ['NaN', { x: [1, Number.NaN] }, 'data.x[1]'],
    ['Infinity', { x: Infinity }, 'data.x'],
    ['-Infinity', [-Infinity], 'data[0]'],
    ['undefined nested in an object', { a: { b: undefined } }, 'data.a.b'],
    ['undefined in an array', [1, undefined], 'data[1]'],
    ['a hole in a sparse array', { list: new Array(2) }, 'data.list[0]'],
    ['a Date', { at: new Date(0) }, 'data.at'],
    ['a Map', { m: new Map() }, 'data.m'],
    ['a class instance', { price: new Money(5) }, 'data.price'],
    ['a NUL character', { s: ['ok', 'a\u0000b'] }, 'data.s[1]'],
    ['a lone surrogate', { s: '\ud800x' }, 'data.s'],
    ['a NUL in a key', { 'a\u0000': 1 }, 'data (a key)'],
  ])('%s', (_name, data, path) => {
    const error = rejection([{ type: 'Ok', data: 1 }, { type: 'T', data }]);
    expect(error.code).toBe('INVALID_EVENT');
    expect(error.details).toEqual({ streamId: 's-1', index: 1, path });
    expect(error.message).toContain(`at ${path},`);
    expect(error.message).toContain("'s-1'");
    expect(error.message).toContain('#1');
  });

  it('names the class of an instance', () => {
    expect(rejection([{ type: 'T', data: { price: new Money(5) } }]).message).toContain('Money');
    expect(rejection([{ type: 'T', data: { at: new Date(0) } }]).message).toContain('ISO string');
  });

  it('undefined data at the top level', () => {
    const error = rejection([{ type: 'T' }]);
    expect(error.details.path).toBe('data');
    expect(error.message).toContain('undefined data');
  });

  it('bad metadata', () => {
    expect(rejection([{ type: 'T', data: 1, metadata: 'x' }]).details.path).toBe('metadata');
    expect(rejection([{ type: 'T', data: 1, metadata: [1] }]).details.path).toBe('metadata');
    expect(rejection([{ type: 'T', data: 1, metadata: null }]).details.path).toBe('metadata');
    expect(rejection([{ type: 'T', data: 1, metadata: { at: new Date() } }]).details.path).toBe('metadata.at');
    expect(rejection([{ type: 'T', data: 1, metadata: { f: () => 1 } }]).details.path).toBe('metadata.f');
  });

  it('bad events and bad types', () => {
    expect(rejection('nope').message).toContain('array');
    expect(rejection([null]).message).toContain('not an object');
    expect(rejection([{ data: 1 }]).message).toContain("'type'");
    expect(rejection([{ type: '', data: 1 }]).message).toContain("'type'");
    expect(rejection([{ type: 'x'.repeat(257), data: 1 }]).message).toContain('256');
    expect(rejection([{ type: 7, data: 1 }]).details.index).toBe(0);
  });

  it('too many events, or too many bytes, is a BatchTooLargeError', () => {
    const many = Array.from({ length: 4 }, () => ({ type: 'T', data: 1 }));
    expect(() => prepareEvents('s', many, { maxEventsPerAppend: 3, maxEventBytes: 100 })).toThrow(BatchTooLargeError);
    try {
      prepareEvents('s', many, { maxEventsPerAppend: 3, maxEventBytes: 100 });
    } catch (e) {
      expect(e).toMatchObject({ code: 'BATCH_TOO_LARGE', limit: 3, actual: 4 });
    }
    // 'é' is 2 UTF-8 bytes: 40 of them (+ quotes) exceed 80 bytes though the text is 42 chars.
    const limits = { maxEventsPerAppend: 10, maxEventBytes: 80 };
    expect(() => prepareEvents('s', [{ type: 'T', data: 'é'.repeat(40) }], limits)).toThrow(BatchTooLargeError);
    expect(() => prepareEvents('s', [{ type: 'T', data: 'e'.repeat(40) }], limits)).not.toThrow();
    // Metadata counts too.
    expect(() =>
      prepareEvents('s', [{ type: 'T', data: 'e'.repeat(40), metadata: { pad: 'x'.repeat(40) } }], limits),
    ).toThrow(BatchTooLargeError);
    // Exactly at the limit passes: '"' + 76 + '"' + '{}' = 80 bytes.
    expect(() => prepareEvents('s', [{ type: 'T', data: 'e'.repeat(76) }], limits)).not.toThrow();
    expect(() => prepareEvents('s', [{ type: 'T', data: 'e'.repeat(77) }], limits)).toThrow(BatchTooLargeError);
  });

  it('nothing is written when one event of an append is bad', async () => {
    const store = new InMemoryEventStore();
    await expect(
      store.append('s', [{ type: 'Ok', data: 1 }, { type: 'Bad', data: { n: 1n } }], { expectedVersion: 'any' }),
    ).rejects.toBeInstanceOf(InvalidEventError);
    expect(await store.streamVersion('s')).toBe(0);
    expect(await store.headPosition()).toBe(0);
  });
});

describe('prepareEvents accepts JSON', () => {
  it('keeps awkward but valid JSON exactly, including __proto__ and constructor keys', () => {
    const data = JSON.parse('{"__proto__":{"polluted":true},"constructor":{"prototype":1},"":[null,false,0,-1.5e300,"\\u0001\\"é😀"]}') as object;
    const [prepared] = prepareEvents('s', [{ type: 'T', data }]);
    expect(Object.keys(prepared!.data as object)).toEqual(['__proto__', 'constructor', '']);
    expect(JSON.parse(prepared!.dataJson)).toEqual(data);
    expect(prepared!.dataJson).toBe(JSON.stringify(data));
    expect(Object.getPrototypeOf(prepared!.data)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('stores -0 as 0, as JSON would', () => {
    const [prepared] = prepareEvents('s', [{ type: 'T', data: [-0] }]);
    expect(Object.is((prepared!.data as number[])[0], 0)).toBe(true);
  });

  it('accepts null-prototype objects', () => {
    const bare = Object.assign(Object.create(null) as object, { a: 1 });
    const [prepared] = prepareEvents('s', [{ type: 'T', data: bare }]);
    expect(prepared!.dataJson).toBe('{"a":1}');
  });

  it('round-trips any JSON value with deep equality, through prepare and through the store', async () => {
    // What JSON itself keeps: -0 becomes 0 (NUL and lone surrogates are refused, tested above).
    const asJson = (v: unknown): unknown => JSON.parse(JSON.stringify(v));
    const storable = (v: unknown) => {
      const text = JSON.stringify(v);
      return !text.includes('\\u0000') && (text as string & { isWellFormed(): boolean }).isWellFormed();
    };
    await fc.assert(
      fc.asyncProperty(
        fc.jsonValue().filter(storable),
        fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 4 }).filter(storable),
        async (data, extra) => {
          const metadata = { ...extra, correlationId: 'c' };
          const [prepared] = prepareEvents('s', [{ type: 'T', data, metadata }]);
          expect(prepared!.data).toEqual(asJson(data));
          expect(prepared!.metadata).toEqual(asJson(metadata));
          expect(prepared!.dataJson).toBe(JSON.stringify(data));
          expect(prepared!.metadataJson).toBe(JSON.stringify(metadata));
          const store = new InMemoryEventStore();
          await store.append('s', [{ type: 'T', data, metadata }], { expectedVersion: 'no-stream' });
          const [read] = await store.readStream('s').toArray();
          expect(read!.data).toEqual(asJson(data));
          expect(read!.metadata).toEqual(asJson(metadata));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('stores deeply frozen copies that do not alias the caller’s objects', async () => {
    await fc.assert(
      fc.property(fc.dictionary(fc.string({ minLength: 1 }), fc.jsonValue(), { minKeys: 1 }), (original) => {
        const data = { nested: original, list: [original, { x: 1 }] };
        const metadata = { tag: { deep: ['a'] } };
        const before = JSON.stringify({ data, metadata });
        const [prepared] = prepareEvents('s', [{ type: 'T', data, metadata }]);
        expect(prepared!.data).not.toBe(data);
        const copy = prepared!.data as typeof data;
        expect(copy.nested).not.toBe(original);
        expect(prepared!.metadata['tag']).not.toBe(metadata.tag);
        const frozenAll = (v: unknown): boolean =>
          typeof v !== 'object' || v === null || (Object.isFrozen(v) && Object.values(v).every(frozenAll));
        expect(frozenAll(prepared!.data)).toBe(true);
        expect(frozenAll(prepared!.metadata)).toBe(true);
        // The caller mutates afterwards: the prepared event does not change.
        (data.list[1] as { x: number }).x = 2;
        metadata.tag.deep.push('b');
        for (const key of Object.keys(original)) delete original[key];
        expect(JSON.stringify({ data: prepared!.data, metadata: prepared!.metadata })).toBe(before);
        // The caller's objects stay unfrozen.
        expect(Object.isFrozen(data)).toBe(false);
      }),
      { numRuns: 100 },
    );
  });

  it('the same object twice (a DAG, not a cycle) is fine', () => {
    const shared = { v: 1 };
    const [prepared] = prepareEvents('s', [{ type: 'T', data: { a: shared, b: [shared, shared] } }]);
    expect(prepared!.data).toEqual({ a: { v: 1 }, b: [{ v: 1 }, { v: 1 }] });
  });
});

describe('assertValidStreamId', () => {
  it.each<[unknown, string]>([
    ['', 'empty'],
    ['x'.repeat(257), 'longer than 256'],
    ['a\nb', 'control'],
    [' a', 'whitespace'],
    [42, 'string'],
    [undefined, 'string'],
  ])('rejects %j', (id, reason) => {
    expect(() => assertValidStreamId(id)).toThrow(InvalidStreamIdError);
    expect(() => assertValidStreamId(id)).toThrow(reason);
  });

  it('agrees with the plain rules on random strings (edges, whitespace, C0/C1 controls, format characters, surrogates)', () => {
    const tricky = fc.constantFrom(
      ' ', '\t', '\n', '\u007f', '\u0085', '\u009b', '\u00a0', '\u00ad', '\u200b', '\u200e', '\u202e',
      '\u2028', '\u2066', '\u3000', '\ufeff', '\ud800', 'a', 'é', '😀', '-',
    );
    const idArb = fc.oneof(fc.string({ maxLength: 20 }), fc.array(tricky, { maxLength: 6 }).map((cs) => cs.join('')));
    fc.assert(
      fc.property(idArb, idArb, (a, b) => {
        const id = a + b;
        const valid =
          id.length > 0 &&
          id.length <= 256 &&
          // eslint-disable-next-line no-control-regex
          !/[\u0000-\u001f\u007f-\u009f\p{Cf}\u2028\u2029]/u.test(id) &&
          (id as string & { isWellFormed(): boolean }).isWellFormed() &&
          id.trim() === id;
        let accepted = true;
        try {
          assertValidStreamId(id);
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidStreamIdError);
          accepted = false;
        }
        expect(accepted).toBe(valid);
      }),
      { numRuns: 500 },
    );
  });

  it('accepts ordinary ids', () => {
    for (const id of ['user-1', 'x'.repeat(256), 'ünïcødé/ok:1']) expect(() => assertValidStreamId(id)).not.toThrow();
  });

  it('lookups (assertReadableStreamId) refuse exactly what no version ever stored: C0, DEL, lone surrogates, edges, length', () => {
    const tricky = fc.constantFrom(
      ' ', '\t', '\n', '\u007f', '\u0085', '\u009b', '\u00a0', '\u00ad', '\u200b', '\u200e', '\u202e',
      '\u2028', '\u2066', '\u3000', '\ufeff', '\ud800', 'a', 'é', '😀', '-',
    );
    const idArb = fc.oneof(fc.string({ maxLength: 20 }), fc.array(tricky, { maxLength: 6 }).map((cs) => cs.join('')));
    fc.assert(
      fc.property(idArb, idArb, (a, b) => {
        const id = a + b;
        // The rule of the versions before C1 and format characters were refused.
        const everStored =
          id.length > 0 &&
          id.length <= 256 &&
          // eslint-disable-next-line no-control-regex
          !/[\u0000-\u001f\u007f]/.test(id) &&
          (id as string & { isWellFormed(): boolean }).isWellFormed() &&
          id.trim() === id;
        let readable = true;
        try {
          assertReadableStreamId(id);
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidStreamIdError);
          readable = false;
        }
        expect(readable).toBe(everStored);
        // Every id valid for a new stream is readable.
        let valid = true;
        try {
          assertValidStreamId(id);
        } catch {
          valid = false;
        }
        if (valid) expect(readable).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});

describe('prepareEvents metadata defaults and shared metadata', () => {
  const smallDict = fc.dictionary(fc.constantFrom('a', 'b', 'c', 'correlationId', 'causationId'), fc.string({ maxLength: 8 }), {
    maxKeys: 4,
  });

  it('merges defaults under each event’s own metadata; events without their own share one frozen copy', async () => {
    await fc.assert(
      fc.property(smallDict, fc.array(fc.option(smallDict, { nil: undefined }), { minLength: 1, maxLength: 6 }), (defaults, own) => {
        const source = { ...defaults };
        const events = own.map((metadata, i): AnyEvent => (metadata === undefined ? { type: 'T', data: i } : { type: 'T', data: i, metadata }));
        const prepared = prepareEvents('s', events, undefined, source);
        prepared.forEach((p, i) => {
          expect(p.metadata).toEqual({ ...defaults, ...own[i] });
          expect(Object.isFrozen(p.metadata)).toBe(true);
          expect(p.metadata).not.toBe(source);
        });
        const plain = prepared.filter((_, i) => own[i] === undefined).map((p) => p.metadata);
        for (const m of plain) expect(m).toBe(plain[0]);
        // The caller's object changes afterwards: nothing prepared does.
        (source as Record<string, string>)['late'] = 'x';
        prepared.forEach((p, i) => expect(p.metadata).toEqual({ ...defaults, ...own[i] }));
      }),
      { numRuns: 100 },
    );
  });

  it('copies a metadata object given to several events once', () => {
    const metadata = { correlationId: 'c', nested: { n: 1 } };
    const prepared = prepareEvents('s', [
      { type: 'T', data: 1, metadata },
      { type: 'T', data: 2, metadata },
      { type: 'T', data: 3, metadata: { other: true } },
    ]);
    expect(prepared[0]!.metadata).toBe(prepared[1]!.metadata);
    expect(prepared[0]!.metadata).not.toBe(metadata);
    expect(prepared[2]!.metadata).toEqual({ other: true });
    metadata.nested.n = 2;
    expect(prepared[1]!.metadata).toEqual({ correlationId: 'c', nested: { n: 1 } });
  });

  it('validates the defaults as each event’s metadata: bad values, non-objects and the byte limit', () => {
    const bad = (() => {
      try {
        prepareEvents('s', [{ type: 'T', data: 1 }], undefined, { when: new Date(0) } as never);
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    expect(bad).toBeInstanceOf(InvalidEventError);
    expect((bad as InvalidEventError).details).toMatchObject({ index: 0, path: 'metadata.when' });
    expect(() => prepareEvents('s', [{ type: 'T', data: 1 }], undefined, ['x'] as never)).toThrow(InvalidEventError);
    // Every event sharing the defaults pays for their bytes under maxEventBytes.
    const limits = { maxEventsPerAppend: 10, maxEventBytes: 200 };
    const big = { note: 'x'.repeat(250) };
    expect(() => prepareEvents('s', [{ type: 'T', data: 1 }, { type: 'T', data: 2 }], limits, big)).toThrow(BatchTooLargeError);
    expect(prepareEvents('s', [{ type: 'T', data: 1 }, { type: 'T', data: 2 }], limits, { note: 'short' })).toHaveLength(2);
  });
});
