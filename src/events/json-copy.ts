import { InvalidEventError, StoreCorruptError } from '../errors.js';

/**
 * How deeply objects and arrays may nest in event data and metadata (the top-level value is depth
 * 0). Deeper data is refused with `InvalidEventError`: copying, serialising and parsing it would
 * otherwise recurse deep enough to overflow the stack, and no store should keep it.
 */
export const MAX_JSON_DEPTH = 256;

// Upper bounds of JSON text in UTF-8 bytes: a UTF-16 unit takes at most 6 (a \uXXXX escape).
export const MAX_BYTES_PER_CHAR = 6;
const MAX_NUMBER_BYTES = 25;

/**
 * @internal State of one copy walk. Paths are kept as a stack of keys and turned into text only
 * for an error message, so a valid event costs no string building.
 */
export class JsonWalk {
  streamId = '';
  index = 0;
  type = '';
  root = '';
  /** Upper bound of the UTF-8 bytes of the JSON written so far. */
  bytes = 0;
  /** The objects and arrays being copied, outermost first: a repeat is a cycle. */
  readonly ancestors: object[] = [];
  /** Keys (strings) and indexes (numbers) from the root to the current value. */
  readonly keys: Array<string | number> = [];

  begin(root: string): void {
    this.root = root;
    // Setting length is a slow call even when it changes nothing; they are empty after a clean walk.
    if (this.ancestors.length !== 0) this.ancestors.length = 0;
    if (this.keys.length !== 0) this.keys.length = 0;
  }

  path(): string {
    let path = this.root;
    for (const key of this.keys) path += typeof key === 'number' ? `[${key}]` : `.${key}`;
    return path;
  }

  fail(reason: string, path = this.path()): InvalidEventError {
    return invalid(this.streamId, this.index, this.type, path, reason);
  }
}

/**
 * @internal Deep-copies a JSON value and freezes the copy. Rejects what JSON would silently change
 * or drop (functions, symbols, undefined, BigInt, NaN/Infinity, class instances such as Date or
 * Map), cycles, and nesting deeper than `MAX_JSON_DEPTH`, so data always reads back exactly as
 * written and the recursion stays bounded.
 */
export function freezeJson(walk: JsonWalk, value: unknown): unknown {
  switch (typeof value) {
    case 'string':
      assertStorableString(walk, value);
      walk.bytes += MAX_BYTES_PER_CHAR * value.length + 2;
      return value;
    case 'boolean':
      walk.bytes += 5;
      return value;
    case 'number':
      if (!Number.isFinite(value)) throw walk.fail(`${String(value)} is not representable in JSON`);
      walk.bytes += MAX_NUMBER_BYTES;
      // JSON writes -0 as 0; store 0 so every adapter reads back the same value.
      return value === 0 ? 0 : value;
    case 'object': {
      if (value === null) {
        walk.bytes += 4;
        return null;
      }
      const { ancestors, keys } = walk;
      if (ancestors.includes(value)) throw walk.fail('the value contains a cycle');
      // Bounded before recursing deeper: a deep value fails here, not with a stack overflow.
      if (ancestors.length >= MAX_JSON_DEPTH) throw walk.fail(`objects and arrays nest deeper than ${MAX_JSON_DEPTH} levels`);
      ancestors.push(value);
      let copy: unknown;
      if (Array.isArray(value)) {
        const length = value.length;
        walk.bytes += 2 + length;
        const array = new Array<unknown>(length);
        for (let i = 0; i < length; i++) {
          keys.push(i);
          array[i] = freezeJson(walk, value[i]);
          keys.pop();
        }
        copy = Object.freeze(array);
      } else {
        const proto = Object.getPrototypeOf(value) as unknown;
        if (proto !== Object.prototype && proto !== null) {
          const name = (value as { constructor?: { name?: string } }).constructor?.name ?? 'unknown';
          throw walk.fail(`a ${name} instance is not plain JSON (convert it first, e.g. a Date to an ISO string)`);
        }
        const object: Record<string, unknown> = {};
        const ownKeys = Object.keys(value);
        walk.bytes += 2;
        for (let k = 0; k < ownKeys.length; k++) {
          const key = ownKeys[k]!;
          const child = (value as Record<string, unknown>)[key];
          if (!isStorable(key)) assertStorableString(walk, key, `${walk.path()} (a key)`);
          walk.bytes += MAX_BYTES_PER_CHAR * key.length + 4;
          keys.push(key);
          if (child === undefined) throw walk.fail('undefined is not JSON (omit the key instead)');
          const copied = freezeJson(walk, child);
          keys.pop();
          // Assigning '__proto__' would set the copy's prototype instead of a key: define it.
          if (key === '__proto__') Object.defineProperty(object, key, { value: copied, enumerable: true, writable: true, configurable: true });
          else object[key] = copied;
        }
        if (Object.getOwnPropertySymbols(value).length > 0) throw walk.fail('symbol keys are not JSON');
        copy = Object.freeze(object);
      }
      ancestors.pop();
      return copy;
    }
    case 'undefined':
      throw walk.fail('undefined is not JSON');
    default:
      throw walk.fail(`a ${typeof value} is not JSON`);
  }
}

export function isStorable(value: string): boolean {
  return !value.includes('\u0000') && (value as string & { isWellFormed(): boolean }).isWellFormed();
}

/**
 * NUL characters and lone surrogates have no UTF-8 form: PostgreSQL rejects them and other
 * backends would change them, so they are refused up front, the same way for every adapter.
 */
export function assertStorableString(walk: JsonWalk, value: string, path?: string): void {
  if (value.includes('\u0000')) {
    throw walk.fail('a string contains a NUL (\\u0000) character, which no store keeps', path);
  }
  if (!(value as string & { isWellFormed(): boolean }).isWellFormed()) {
    throw walk.fail('a string contains a lone UTF-16 surrogate (not valid Unicode)', path);
  }
}

function invalid(streamId: string, index: number, type: string, path: string, reason: string): InvalidEventError {
  return new InvalidEventError(
    `Event #${index} ('${type}') for stream '${streamId}' cannot be stored: at ${path}, ${reason}.`,
    { streamId, index, path },
  );
}

/**
 * Deep-freezes a value parsed from JSON (it has no cycles and only plain objects and arrays).
 * Iterative, so data nested however deep (written by another tool, say) cannot overflow the stack.
 */
export function deepFreezeJson<T>(value: T): T {
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const next = pending.pop();
    if (typeof next !== 'object' || next === null || Object.isFrozen(next)) continue;
    Object.freeze(next);
    if (Array.isArray(next)) {
      for (let i = 0; i < next.length; i++) pending.push(next[i]);
    } else {
      for (const key in next) pending.push((next as Record<string, unknown>)[key]);
    }
  }
  return value;
}

/**
 * Parses JSON text read back from a store and deep-freezes it. Text that is not JSON means the row
 * was damaged or written by something else than eventfold: `StoreCorruptError`, not a raw
 * `SyntaxError`.
 */
export function parseStoredJson(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new StoreCorruptError(
      `A stored JSON value cannot be parsed (${error instanceof Error ? error.message : String(error)}): the row ` +
        `was damaged or written by another program. Repair it, or restore from a backup.`,
      { cause: error },
    );
  }
  return deepFreezeJson(value);
}
