import type { ServerResponse } from 'node:http';
import { CONFLICT_CODES } from '../commands.js';
import { MAX_PASSWORD_LENGTH } from '../domain/user.js';
import { isStoreUnavailable } from '../unavailable.js';

/**
 * An answer in the API's own words: an HTTP status and a problem+json body (RFC 9457). Library
 * and driver messages never reach a client: they name internals and suggest developer fixes.
 */
export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    detail: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
  }
}

export const badRequest = (detail: string, extra: Record<string, unknown> = {}): HttpProblem =>
  new HttpProblem(400, 'Bad Request', detail, extra);

/** Seconds a client should wait before retrying a 503. */
export const RETRY_AFTER_SECONDS = 1;

export const serviceUnavailable = (detail: string, code: string): HttpProblem =>
  new HttpProblem(503, 'Service Unavailable', detail, { code }, { 'retry-after': String(RETRY_AFTER_SECONDS) });

/** What the request was about, so an answer can name it without quoting an internal message. */
export interface ProblemContext {
  readonly userId?: string;
}

/** Client mistakes, by the error's code: status, the code the API shows, and the API's words. */
const CLIENT_ERRORS: Readonly<Record<string, readonly [status: number, apiCode: string, detail: string]>> = {
  USER_NOT_FOUND: [404, 'USER_NOT_FOUND', 'No such user.'],
  AGGREGATE_NOT_FOUND: [404, 'USER_NOT_FOUND', 'No such user.'],
  STREAM_NOT_FOUND: [404, 'USER_NOT_FOUND', 'No such user.'],
  USER_ALREADY_REGISTERED: [409, 'USER_ALREADY_REGISTERED', 'A user with this id is already registered.'],
  USER_NAME_TAKEN: [409, 'USER_NAME_TAKEN', 'This user name is already taken.'],
  USER_DEACTIVATED: [409, 'USER_DEACTIVATED', 'The user is deactivated and cannot be changed.'],
  INVALID_EMAIL: [400, 'INVALID_EMAIL', 'The email address is not valid.'],
  INVALID_USER_NAME: [400, 'INVALID_USER_NAME', "A user name is 3–32 characters of a–z, 0–9, '.', '_' or '-', starting and ending with a letter or digit."],
  WEAK_PASSWORD: [400, 'WEAK_PASSWORD', 'A password needs at least 8 characters.'],
  PASSWORD_TOO_LONG: [400, 'PASSWORD_TOO_LONG', `A password has at most ${MAX_PASSWORD_LENGTH} characters.`],
  INVALID_ARGUMENT: [400, 'INVALID_REQUEST', 'The request has a value out of range.'],
  INVALID_EVENT: [400, 'INVALID_REQUEST', 'The request cannot be stored as given.'],
  INVALID_STREAM_ID: [400, 'INVALID_REQUEST', 'The user id cannot be used.'],
  BATCH_TOO_LARGE: [400, 'INVALID_REQUEST', 'The request is too large to store.'],
  INVALID_COMMAND: [400, 'INVALID_REQUEST', 'The request has a value out of range.'],
  // Idempotency keys and forgotten users (see evolution.ts).
  IDEMPOTENCY_KEY_REUSED: [422, 'IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was already used for a different request.'],
  COMMAND_PENDING: [409, 'REQUEST_IN_PROGRESS', 'A request with this Idempotency-Key is still being processed; retry shortly.'],
  SUBJECT_FORGOTTEN: [409, 'USER_FORGOTTEN', 'The user was forgotten; their personal data cannot be stored again.'],
};

const TITLES: Readonly<Record<number, string>> = { 400: 'Bad Request', 404: 'Not Found', 409: 'Conflict', 422: 'Unprocessable Content' };

const versionOf = (value: unknown): number | undefined => (typeof value === 'number' && Number.isSafeInteger(value) ? value : undefined);

/**
 * Maps any failure to an answer, by the error's stable `code` (never its class or message):
 * client mistakes are 4xx, an unreachable or closing store is 503 with Retry-After, and only
 * what is left (a bug) is 500.
 */
export function toProblem(error: unknown, context: ProblemContext = {}): HttpProblem {
  if (error instanceof HttpProblem) return error;
  const code = (error as { code?: unknown } | null | undefined)?.code;
  if (typeof code === 'string' && CONFLICT_CODES.has(code)) {
    const current = versionOf((error as { actualVersion?: unknown }).actualVersion);
    return new HttpProblem(
      412,
      'Precondition Failed',
      current === undefined
        ? 'The user changed since you read it. Reload it and retry.'
        : `The user changed since you read it: it is at version ${current}. Reload it and retry.`,
      { code: 'VERSION_MISMATCH', ...(current === undefined ? {} : { currentVersion: current }) },
      current === undefined ? {} : { etag: `"${current}"` },
    );
  }
  if (code === 'COMMAND_PENDING') {
    return new HttpProblem(409, 'Conflict', 'The same request is still being processed; retry shortly.', { code }, { 'retry-after': String(RETRY_AFTER_SECONDS) });
  }
  if (code === 'SERVICE_BUSY') return serviceUnavailable('The service is busy; retry shortly.', 'SERVICE_BUSY');
  if (isStoreUnavailable(error)) return serviceUnavailable('The user store is unavailable; retry shortly.', 'STORE_UNAVAILABLE');
  if (code === 'INVALID_COMMAND') {
    // The schema's issues name the request's own fields (see userCommandSchemas), never internals.
    const issues = (error as { issues?: readonly { path: string; message: string }[] }).issues ?? [];
    return badRequest('The request does not match its schema.', { code: 'INVALID_COMMAND', issues: issues.map(({ path, message }) => ({ path, message })) });
  }
  if (typeof code === 'string') {
    const known = Object.hasOwn(CLIENT_ERRORS, code) ? CLIENT_ERRORS[code] : undefined;
    if (known !== undefined) {
      const [status, apiCode, detail] = known;
      const named = status === 404 && context.userId !== undefined ? `No user '${context.userId}'.` : detail;
      return new HttpProblem(status, TITLES[status] ?? 'Error', named, { code: apiCode });
    }
  }
  return new HttpProblem(500, 'Internal Server Error', 'Something went wrong on our side.');
}

export function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** problem+json; `instance` is the request path, which the server has already validated as text. */
export function problemBody(problem: HttpProblem, instance: string | undefined): string {
  return JSON.stringify({
    type: 'about:blank',
    title: problem.title,
    status: problem.status,
    detail: problem.message,
    ...(instance === undefined ? {} : { instance }),
    ...problem.extra,
  });
}

export function sendProblem(res: ServerResponse, problem: HttpProblem, instance: string | undefined, extraHeaders: Record<string, string> = {}): void {
  const text = problemBody(problem, instance);
  res.writeHead(problem.status, {
    'content-type': 'application/problem+json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...problem.headers,
    ...extraHeaders,
  });
  res.end(text);
}
