import type { IncomingMessage } from 'node:http';
import type { VersionPrecondition } from '../commands.js';
import { badRequest, HttpProblem } from './problems.js';

export const MAX_BODY_BYTES = 16 * 1024;
const USER_ID = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The request target as a URL. Origin form (`/users?x=1`) is read relative to a fixed base, so a
 * target such as `//[` is a path, not a host; absolute form (`http://host/users`) keeps only its
 * path and query. Anything else is a 400, never an exception that escapes the handler.
 */
export function parseTarget(raw: string | undefined): URL {
  try {
    if (raw !== undefined && raw.startsWith('/')) return new URL(`http://localhost${raw}`);
    if (raw !== undefined && /^https?:\/\//i.test(raw)) {
      const absolute = new URL(raw);
      return new URL(`http://localhost${absolute.pathname}${absolute.search}`);
    }
  } catch {
    // fall through to the 400
  }
  throw badRequest('The request target is not a valid path.');
}

/** Reads a JSON object body of at most MAX_BODY_BYTES; refuses a larger declared length before reading any of it. */
export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/(.+\+)?json\s*(;|$)/i.test(type)) {
    throw new HttpProblem(415, 'Unsupported Media Type', 'Send the body as application/json.');
  }
  const tooLarge = (): HttpProblem => new HttpProblem(413, 'Payload Too Large', `The body may hold at most ${MAX_BODY_BYTES} bytes.`);
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > MAX_BODY_BYTES) throw tooLarge();
  const text = (await readBody(req, MAX_BODY_BYTES, tooLarge)).toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw badRequest('The body is not valid JSON.');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw badRequest('The body must be a JSON object.');
  return parsed as Record<string, unknown>;
}

/**
 * Collects a body of at most `limit` bytes. Past the limit it stops reading (the stream is paused,
 * not destroyed, so the socket is still there to carry the 413).
 */
function readBody(req: IncomingMessage, limit: number, tooLarge: () => Error): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      req.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= limit) {
        chunks.push(chunk);
        return;
      }
      cleanup();
      req.pause();
      reject(tooLarge());
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks));
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const onClose = (): void => {
      cleanup();
      if (!req.complete) reject(Object.assign(new Error('The client closed the request before sending all of it.'), { code: 'ECONNRESET' }));
    };
    req.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
  });
}

/**
 * Reads and discards the rest of a body the handler did not need (at most `limit` bytes, for at
 * most `timeoutMs`), so the answer can be sent on a connection that stays usable. Closing it with
 * unread data instead makes the kernel reset the connection, and the client may lose the answer.
 * Resolves false when the body was too large or too slow: then the connection must close.
 */
export function drainBody(req: IncomingMessage, limit: number, timeoutMs: number): Promise<boolean> {
  if (req.complete) return Promise.resolve(true);
  if (req.readableEnded || req.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    let size = 0;
    const finish = (drained: boolean): void => {
      clearTimeout(timer);
      req.off('data', onData).off('end', onEnd).off('error', onFail).off('close', onFail);
      resolve(drained);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) finish(false);
    };
    const onEnd = (): void => finish(true);
    const onFail = (): void => finish(false);
    const timer = setTimeout(onFail, timeoutMs);
    req.on('data', onData).on('end', onEnd).on('error', onFail).on('close', onFail);
    req.resume();
  });
}

export function stringField(body: Record<string, unknown>, name: string, maxLength = 1024): string {
  const value = body[name];
  if (typeof value !== 'string' || value.length === 0) throw badRequest(`'${name}' is required and must be a non-empty string.`, { field: name });
  if (value.length > maxLength) throw badRequest(`'${name}' is too long (at most ${maxLength} characters).`, { field: name });
  return value;
}

export function userIdFrom(raw: string): string {
  let id: string;
  try {
    id = decodeURIComponent(raw);
  } catch {
    throw badRequest('The user id in the path is not valid percent-encoding.');
  }
  if (!USER_ID.test(id)) throw badRequest('A user id is 1–64 characters of A–Z, a–z, 0–9, _ or -.');
  return id;
}

export function intParam(url: URL, name: string, fallback: number, min: number, max: number): number {
  const raw = url.searchParams.get(name);
  if (raw === null) return fallback;
  if (!/^\d{1,15}$/.test(raw)) throw badRequest(`'${name}' must be a whole number.`, { parameter: name });
  const value = Number(raw);
  if (value < min || value > max) throw badRequest(`'${name}' must be between ${min} and ${max}.`, { parameter: name });
  return value;
}

// One list element of If-Match: `*`, a weak or strong entity tag, or (leniently) a bare version.
const ELEMENT = /[ \t]*(\*|W\/"[\x21\x23-\x7E\x80-\xFF]*"|"[\x21\x23-\x7E\x80-\xFF]*"|\d{1,15})?[ \t]*(?:,|$)/y;

/**
 * If-Match (RFC 9110 §13.1.1) as a version precondition. `*` means "the user exists". Entity tags
 * compare strongly: a weak tag (`W/"3"`) never matches, nor does a tag that is not one of our
 * versions, so a list of only those can never be met (412 once the user is known to exist). A bare
 * number `3` is read as `"3"`. Required on updates: no blind overwrites (428 without it).
 */
export function ifMatch(header: string | undefined, required: boolean): VersionPrecondition | undefined {
  if (header === undefined) {
    if (!required) return undefined;
    throw new HttpProblem(428, 'Precondition Required', 'Send If-Match with the ETag you read (GET /users/:id), or * for any version.');
  }
  const malformed = (): HttpProblem =>
    badRequest('If-Match must be * or a list of entity tags such as "3" (the ETag of GET /users/:id).');
  const elements: string[] = [];
  ELEMENT.lastIndex = 0;
  while (ELEMENT.lastIndex < header.length) {
    const at = ELEMENT.lastIndex;
    const match = ELEMENT.exec(header);
    if (match === null || ELEMENT.lastIndex === at) throw malformed();
    if (match[1] !== undefined) elements.push(match[1]);
  }
  if (elements.length === 0) throw malformed();
  if (elements.includes('*')) {
    if (elements.length > 1) throw malformed();
    return 'exists';
  }
  const versions = elements.flatMap((element) => {
    const version = /^"?(\d{1,15})"?$/.exec(element)?.[1];
    return version === undefined ? [] : [Number(version)];
  });
  return versions.length === 1 ? versions[0]! : versions;
}
