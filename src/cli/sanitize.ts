/**
 * Event data, types, stream ids and error messages are hostile input: a payload holding
 * `ESC ]52;…` or `ESC [2J` must not drive the terminal, and a right-to-left override must not
 * reorder what the reader sees. Every piece of stored text the CLI prints goes through these.
 *
 * Escaped: C0 controls (U+0000–U+001F, ESC included), DEL, C1 controls (U+0080–U+009F, which
 * some terminals treat like ESC sequences), the bidirectional controls (U+061C, U+200E, U+200F,
 * U+202A–U+202E, U+2066–U+2069) and the line/paragraph separators U+2028/U+2029.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g;

// eslint-disable-next-line no-control-regex
const UNSAFE_IN_JSON = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g;

function escapeCodeUnit(char: string): string {
  return `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/** Each UTF-16 unit of a (possibly astral) character as `\uXXXX`. */
function escapeCodeUnits(char: string): string {
  let out = '';
  for (let i = 0; i < char.length; i++) out += escapeCodeUnit(char[i]!);
  return out;
}

/** Makes one line of stored text safe to print: unsafe characters become visible `\uXXXX`. */
export function sanitizeText(text: string): string {
  return text.replace(UNSAFE, escapeCodeUnit);
}

/** True when the text holds nothing `sanitizeText` would change. */
export function isSafeText(text: string): boolean {
  UNSAFE.lastIndex = 0;
  const found = UNSAFE.test(text);
  UNSAFE.lastIndex = 0;
  return !found;
}

/** What stream ids may not hold (see `assertValidStreamId`) beyond `UNSAFE`: every invisible format character. */
const INVISIBLE_IN_ID = /[\p{Cf}\u2028\u2029]/gu;

/**
 * A stream id as printable text: `sanitizeText`, and every invisible formatting character (a
 * zero-width space, a soft hyphen, …) as `\uXXXX` too, so an id an earlier version stored with
 * one shows as what it is. Event data keeps those (a zero-width joiner inside an emoji is fine).
 */
export function sanitizeStreamId(streamId: string): string {
  return sanitizeText(streamId).replace(INVISIBLE_IN_ID, escapeCodeUnits);
}

/**
 * JSON text that is still valid JSON (for scripts) but carries no raw control or bidi character:
 * JSON.stringify already escapes C0 controls; this escapes the rest the same `\uXXXX` way.
 */
export function safeJsonStringify(value: unknown, indent?: number): string {
  // JSON.stringify escapes every C0 control inside strings, so a raw newline here is layout.
  return (JSON.stringify(value, null, indent) ?? 'null').replace(UNSAFE_IN_JSON, escapeCodeUnit);
}
