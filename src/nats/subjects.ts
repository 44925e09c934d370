import { assertReadableStreamId } from '../events/validation.js';
import { InvalidArgumentError } from '../errors.js';

/**
 * Stream ids become one subject token (and one KV key part). A token keeps `A-Z a-z 0-9 _ -` as
 * they are and writes every other UTF-8 byte as `=XX` (upper-case hex), `=` itself included. So
 * the mapping is injective, the token never holds `.`, `*`, `>`, whitespace or control characters
 * (no wildcard or extra token can reach a subject), and it is a valid KV key as well.
 * Examples: `order-1` → `order-1`; `a.*` → `a=2E=2A`; `>` → `=3E`; `ü` → `=C3=BC`.
 * It takes any id a stream may be stored under (see `assertReadableStreamId`), so streams that an
 * earlier version wrote under ids now refused for new streams keep their subject; appends check
 * the stricter rule before they get here.
 */
export function encodeStreamToken(streamId: string): string {
  assertReadableStreamId(streamId);
  return encodeToken(streamId);
}

/** The same encoding for any non-empty text (projection names, unique values, scopes). */
export function encodeToken(text: string): string {
  let plain = text.length > 0;
  for (let i = 0; i < text.length; i++) {
    if (!isPlain(text.charCodeAt(i))) {
      plain = false;
      break;
    }
  }
  if (plain) return text;
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    out += isPlain(byte) ? String.fromCharCode(byte) : `=${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The inverse of `encodeStreamToken`. */
export function decodeStreamToken(token: string): string {
  if (!token.includes('=')) return token;
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    if (c === 0x3d) {
      bytes.push(parseInt(token.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(c);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function isPlain(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f || c === 0x2d;
}

const NAME = /^[A-Za-z0-9_-]{1,64}$/;
const PREFIX_TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

/** JetStream stream and KV bucket names: letters, digits, `_` and `-`, at most 64. */
export function assertValidNatsName(what: string, name: unknown): asserts name is string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new InvalidArgumentError(
      `${what} must be 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-', got ${JSON.stringify(name) ?? String(name)}.`,
    );
  }
}

/** A subject prefix: one or more dot-separated tokens of letters, digits, `_` and `-` (no wildcards). */
export function assertValidSubjectPrefix(prefix: unknown): asserts prefix is string {
  if (typeof prefix !== 'string' || prefix.length > 128 || !prefix.split('.').every((token) => PREFIX_TOKEN.test(token))) {
    throw new InvalidArgumentError(
      `subjectPrefix must be dot-separated tokens of A-Z, a-z, 0-9, '_' or '-' (no wildcards, at most 128 ` +
        `characters), got ${JSON.stringify(prefix) ?? String(prefix)}.`,
    );
  }
}
