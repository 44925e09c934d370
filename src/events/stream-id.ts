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
 * Why an id is refused. `stored`: earlier versions of eventfold accepted such ids (C1 controls
 * and invisible formatting characters were refused later), so a store may hold streams under it.
 * Every other problem was refused by every version: no stream can exist under such an id.
 */
interface StreamIdProblem {
  readonly reason: string;
  readonly stored: boolean;
}

function problemOf(streamId: unknown): StreamIdProblem | undefined {
  if (typeof streamId !== 'string') return { reason: 'a stream id must be a string', stored: false };
  if (streamId.length === 0) return { reason: 'it is empty', stored: false };
  if (streamId.length > MAX_STREAM_ID_LENGTH) {
    return { reason: `it is longer than ${MAX_STREAM_ID_LENGTH} characters`, stored: false };
  }
  // A char loop rather than a regex: ids are checked on every read and append, and most are ASCII.
  let c1 = false;
  let beyondLatin1Controls = false;
  for (let i = 0; i < streamId.length; i++) {
    const c = streamId.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return { reason: 'it contains control characters', stored: false };
    if (c >= 0x80 && c <= 0x9f) c1 = true;
    else if (c >= 0xad) beyondLatin1Controls = true;
  }
  if (beyondLatin1Controls && !(streamId as string & { isWellFormed(): boolean }).isWellFormed()) {
    return { reason: 'it contains a lone UTF-16 surrogate (not valid Unicode)', stored: false };
  }
  // Every character trim() removes is <= U+0020 or >= U+00A0: only such an edge needs the trim.
  const first = streamId.charCodeAt(0);
  const last = streamId.charCodeAt(streamId.length - 1);
  if ((first <= 0x20 || first >= 0xa0 || last <= 0x20 || last >= 0xa0) && streamId.trim() !== streamId) {
    return { reason: 'it has leading or trailing whitespace', stored: false };
  }
  if (c1) return { reason: 'it contains control characters (C1, U+0080–U+009F)', stored: true };
  if (beyondLatin1Controls && INVISIBLE.test(streamId)) {
    return {
      reason:
        'it contains an invisible formatting character (a bidi override or mark, a zero-width character, ' +
        'a line separator, …) that would make it read differently in logs',
      stored: true,
    };
  }
  return undefined;
}

/**
 * The rule for new stream ids: non-empty, at most 256 characters, and free of control characters
 * (C0, DEL and C1, U+0080–U+009F), invisible formatting characters (see `INVISIBLE`: bidi
 * overrides, zero-width characters, …), lone surrogates and surrounding whitespace, so they are
 * safe as keys in every backend and read in logs as what they are.
 */
export function assertValidStreamId(streamId: unknown): asserts streamId is string {
  const problem = problemOf(streamId);
  if (problem !== undefined) throw new InvalidStreamIdError(streamId, problem.reason);
}

/**
 * The rule for ids that look up a stream (reads, stream versions, snapshots, pruning): refuses only
 * what no version of eventfold ever stored (see `assertValidStreamId` for what new ids must
 * meet). Streams that an earlier version wrote under ids with C1 controls or invisible formatting
 * characters stay readable by their id.
 */
export function assertReadableStreamId(streamId: unknown): asserts streamId is string {
  const problem = problemOf(streamId);
  if (problem !== undefined && !problem.stored) throw new InvalidStreamIdError(streamId, problem.reason);
}

/**
 * The rule for appends: a valid id (see `assertValidStreamId`); or, when `mustExist` (the append's
 * expected version requires the stream to exist, so the store's own version check makes sure it
 * does), an id that an earlier version may have stored. So an old stream can be continued or
 * tombstoned, and no new stream is ever created under such an id.
 */
export function assertAppendableStreamId(streamId: unknown, mustExist: boolean): asserts streamId is string {
  const problem = problemOf(streamId);
  if (problem === undefined || (problem.stored && mustExist)) return;
  throw new InvalidStreamIdError(
    streamId,
    problem.stored
      ? `${problem.reason}. New streams cannot take such an id; a stream an earlier version stored under it ` +
          `stays readable, and takes appends whose expected version requires it to exist (its version, or 'stream-exists')`
      : problem.reason,
  );
}
