import { InvalidStreamIdError } from '../errors.js';

export const MAX_STREAM_ID_LENGTH = 256;

/**
 * Invisible characters that change how an id reads: format characters (bidi embeddings, overrides
 * and isolates U+202A–U+202E and U+2066–U+2069, marks U+200E/U+200F/U+061C, zero-width characters
 * U+200B–U+200D and U+2060, the byte order mark U+FEFF, soft hyphen U+00AD, tag characters, …:
 * Unicode category Cf) and the line and paragraph separators U+2028/U+2029, which split a log line.
 */
const INVISIBLE = /[\p{Cf}\u2028\u2029]/u;

/**
 * Stream ids are non-empty, at most 256 characters, and free of control characters (C0, DEL and
 * C1, U+0080–U+009F), invisible formatting characters (see `INVISIBLE`: bidi overrides, zero-width
 * characters, …), lone surrogates and surrounding whitespace, so they are safe as keys in every
 * backend and read in logs as what they are.
 */
export function assertValidStreamId(streamId: unknown): asserts streamId is string {
  if (typeof streamId !== 'string') {
    throw new InvalidStreamIdError(streamId, 'a stream id must be a string');
  }
  if (streamId.length === 0) throw new InvalidStreamIdError(streamId, 'it is empty');
  if (streamId.length > MAX_STREAM_ID_LENGTH) {
    throw new InvalidStreamIdError(streamId, `it is longer than ${MAX_STREAM_ID_LENGTH} characters`);
  }
  // A char loop rather than a regex: ids are checked on every read and append, and most are ASCII.
  let beyondLatin1Controls = false;
  for (let i = 0; i < streamId.length; i++) {
    const c = streamId.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) {
      throw new InvalidStreamIdError(streamId, 'it contains control characters');
    }
    if (c >= 0xad) beyondLatin1Controls = true;
  }
  if (beyondLatin1Controls) {
    if (!(streamId as string & { isWellFormed(): boolean }).isWellFormed()) {
      throw new InvalidStreamIdError(streamId, 'it contains a lone UTF-16 surrogate (not valid Unicode)');
    }
    if (INVISIBLE.test(streamId)) {
      throw new InvalidStreamIdError(
        streamId,
        'it contains an invisible formatting character (a bidi override or mark, a zero-width character, ' +
          'a line separator, …) that would make it read differently in logs',
      );
    }
  }
  // Every character trim() removes is <= U+0020 or >= U+00A0: only such an edge needs the trim.
  const first = streamId.charCodeAt(0);
  const last = streamId.charCodeAt(streamId.length - 1);
  if ((first <= 0x20 || first >= 0xa0 || last <= 0x20 || last >= 0xa0) && streamId.trim() !== streamId) {
    throw new InvalidStreamIdError(streamId, 'it has leading or trailing whitespace');
  }
}
