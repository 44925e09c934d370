import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { ConcurrencyError, isEventfoldError } from 'eventfold';
import type { WriteSide } from '../commands.js';
import type { QuerySide } from '../queries.js';
import { MAX_PAGE_SIZE } from '../queries.js';

/** Which half of CQRS this process serves: commands, queries, or both. */
export type Role = 'write' | 'read' | 'all';

export interface HttpOptions {
  readonly role: Role;
  readonly commands?: WriteSide['commandBus'];
  readonly queries?: QuerySide;
  /** Request log lines (method, path, status, ms). Never bodies: they may hold passwords. */
  readonly log?: (line: string) => void;
}

const MAX_BODY_BYTES = 16 * 1024;
const USER_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** An error that maps straight to an HTTP status and a problem+json body. */
class HttpProblem extends Error {
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

const badRequest = (detail: string, extra: Record<string, unknown> = {}) => new HttpProblem(400, 'Bad Request', detail, extra);

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sendProblem(res: ServerResponse, problem: HttpProblem, instance: string): void {
  const body = { type: 'about:blank', title: problem.title, status: problem.status, detail: problem.message, instance, ...problem.extra };
  const text = JSON.stringify(body);
  res.writeHead(problem.status, {
    'content-type': 'application/problem+json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...problem.headers,
  });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/(.+\+)?json\s*(;|$)/i.test(type)) {
    throw new HttpProblem(415, 'Unsupported Media Type', 'Send the body as application/json.');
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpProblem(413, 'Payload Too Large', `The body may hold at most ${MAX_BODY_BYTES} bytes.`);
    chunks.push(chunk as Buffer);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw badRequest('The body is not valid JSON.');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw badRequest('The body must be a JSON object.');
  return parsed as Record<string, unknown>;
}

function stringField(body: Record<string, unknown>, name: string): string {
  const value = body[name];
  if (typeof value !== 'string' || value.length === 0) throw badRequest(`'${name}' is required and must be a non-empty string.`, { field: name });
  if (value.length > 1024) throw badRequest(`'${name}' is too long.`, { field: name });
  return value;
}

function userIdFrom(raw: string): string {
  let id: string;
  try {
    id = decodeURIComponent(raw);
  } catch {
    throw badRequest('The user id in the path is not valid percent-encoding.');
  }
  if (!USER_ID.test(id)) throw badRequest('A user id is 1–64 characters of A–Z, a–z, 0–9, _ or -.');
  return id;
}

/** `If-Match: 3` or `If-Match: "3"` → 3. Required on updates: no blind overwrites. */
function ifMatch(req: IncomingMessage, required: boolean): number | undefined {
  const header = req.headers['if-match'];
  if (header === undefined) {
    if (!required) return undefined;
    throw new HttpProblem(428, 'Precondition Required', 'Send If-Match with the version you read (the ETag of GET /users/:id).');
  }
  const match = /^\s*(?:W\/)?"?(\d{1,15})"?\s*$/.exec(header);
  if (match === null) throw badRequest(`If-Match must be a version number such as "3", got ${JSON.stringify(header)}.`);
  return Number(match[1]);
}

function intParam(url: URL, name: string, fallback: number, min: number, max: number): number {
  const raw = url.searchParams.get(name);
  if (raw === null) return fallback;
  if (!/^\d{1,15}$/.test(raw)) throw badRequest(`'${name}' must be a whole number.`, { parameter: name });
  const value = Number(raw);
  if (value < min || value > max) throw badRequest(`'${name}' must be between ${min} and ${max}.`, { parameter: name });
  return value;
}

const etag = (version: number): Record<string, string> => ({ etag: `"${version}"` });

/**
 * `Idempotency-Key: <key>` on a write makes it a command with that id: a repeat (a retried
 * request) stores nothing new and gets the first answer. Printable ASCII, 1–200 characters.
 */
function idempotencyKey(req: IncomingMessage): { commandId?: string } {
  const header = req.headers['idempotency-key'];
  if (header === undefined) return {};
  if (typeof header !== 'string' || !/^[\x21-\x7e]{1,200}$/.test(header)) {
    throw badRequest('Idempotency-Key must be 1–200 printable ASCII characters without spaces.');
  }
  return { commandId: header };
}

/** Maps domain and store errors to HTTP: client mistakes are 4xx, never 500. */
function toProblem(error: unknown): HttpProblem {
  if (error instanceof HttpProblem) return error;
  if (error instanceof ConcurrencyError) {
    return new HttpProblem(
      412,
      'Precondition Failed',
      `The user changed since you read it: you sent version ${String(error.expectedVersion)}, it is at version ${error.actualVersion}. Reload and retry.`,
      { code: error.code, expectedVersion: error.expectedVersion, currentVersion: error.actualVersion },
      etag(error.actualVersion),
    );
  }
  if (isEventfoldError(error)) {
    const detail = error.message;
    switch (error.code) {
      case 'AGGREGATE_NOT_FOUND':
      case 'STREAM_NOT_FOUND':
        return new HttpProblem(404, 'Not Found', detail, { code: error.code });
      case 'USER_ALREADY_REGISTERED':
      case 'USER_NAME_TAKEN':
      case 'USER_DEACTIVATED':
        return new HttpProblem(409, 'Conflict', detail, { code: error.code });
      case 'INVALID_EMAIL':
      case 'INVALID_USER_NAME':
      case 'WEAK_PASSWORD':
      case 'INVALID_ARGUMENT':
      case 'INVALID_EVENT':
      case 'INVALID_STREAM_ID':
      case 'BATCH_TOO_LARGE':
        return new HttpProblem(400, 'Bad Request', detail, { code: error.code });
      case 'INVALID_COMMAND':
        return new HttpProblem(400, 'Bad Request', detail, { code: error.code, issues: (error as { issues?: unknown }).issues });
      case 'IDEMPOTENCY_KEY_REUSED':
        return new HttpProblem(422, 'Unprocessable Content', detail, { code: error.code });
      case 'COMMAND_PENDING':
        return new HttpProblem(409, 'Conflict', detail, { code: error.code }, { 'retry-after': '1' });
      case 'STORE_UNAVAILABLE':
        return new HttpProblem(503, 'Service Unavailable', 'The event store is unavailable; retry shortly.', { code: error.code }, { 'retry-after': '1' });
      default:
        break;
    }
  }
  return new HttpProblem(500, 'Internal Server Error', 'Something went wrong on our side.');
}

type Handler = (req: IncomingMessage, url: URL, params: string[]) => Promise<{ status: number; body: unknown; headers?: Record<string, string> }>;

interface Route {
  readonly method: string;
  readonly pattern: RegExp;
  readonly side: 'write' | 'read';
  readonly handler: Handler;
}

/** The user-details HTTP API on node:http. Commands and queries are separate handlers, and a process can serve either half. */
export function createUserDetailsServer(options: HttpOptions): Server {
  const { commands, queries } = options;
  const serveWrite = options.role !== 'read';
  const serveRead = options.role !== 'write';
  if (serveWrite && commands === undefined) throw new Error('The write role needs commands.');
  if (serveRead && queries === undefined) throw new Error('The read role needs queries.');

  const allRoutes: Route[] = [
    {
      method: 'POST',
      pattern: /^\/users$/,
      side: 'write',
      handler: async (req) => {
        const body = await readJson(req);
        const userId = body['userId'] === undefined ? randomUUID() : userIdFrom(stringField(body, 'userId'));
        const result = await commands!.dispatch({
          ...idempotencyKey(req),
          type: 'RegisterUser',
          data: { userId, userName: stringField(body, 'userName'), email: stringField(body, 'email'), password: stringField(body, 'password') },
        });
        return { status: 201, body: result, headers: { location: `/users/${encodeURIComponent(userId)}`, ...etag(result.version) } };
      },
    },
    {
      method: 'POST',
      pattern: /^\/users\/([^/]+)\/password$/,
      side: 'write',
      handler: async (req, _url, [id]) => {
        const userId = userIdFrom(id!);
        const originalVersion = ifMatch(req, true)!;
        const body = await readJson(req);
        const result = await commands!.dispatch({
          ...idempotencyKey(req),
          type: 'ChangePassword',
          data: { userId, newPassword: stringField(body, 'password'), originalVersion },
        });
        return { status: 200, body: result, headers: etag(result.version) };
      },
    },
    {
      method: 'POST',
      pattern: /^\/users\/([^/]+)\/email$/,
      side: 'write',
      handler: async (req, _url, [id]) => {
        const userId = userIdFrom(id!);
        const originalVersion = ifMatch(req, true)!;
        const body = await readJson(req);
        const result = await commands!.dispatch({ ...idempotencyKey(req), type: 'ChangeEmail', data: { userId, email: stringField(body, 'email'), originalVersion } });
        return { status: 200, body: result, headers: etag(result.version) };
      },
    },
    {
      method: 'POST',
      pattern: /^\/users\/([^/]+)\/name$/,
      side: 'write',
      handler: async (req, _url, [id]) => {
        const userId = userIdFrom(id!);
        const originalVersion = ifMatch(req, true)!;
        const body = await readJson(req);
        const result = await commands!.dispatch({ ...idempotencyKey(req), type: 'RenameUser', data: { userId, userName: stringField(body, 'userName'), originalVersion } });
        return { status: 200, body: result, headers: etag(result.version) };
      },
    },
    {
      method: 'DELETE',
      pattern: /^\/users\/([^/]+)$/,
      side: 'write',
      handler: async (req, url, [id]) => {
        const userId = userIdFrom(id!);
        const originalVersion = ifMatch(req, false);
        const reason = url.searchParams.get('reason') ?? 'deleted through the API';
        if (reason.length > 200) throw badRequest("'reason' is too long.");
        const result = await commands!.dispatch({
          ...idempotencyKey(req),
          type: 'DeactivateUser',
          data: { userId, reason, ...(originalVersion === undefined ? {} : { originalVersion }) },
        });
        return { status: 200, body: result, headers: etag(result.version) };
      },
    },
    {
      method: 'POST',
      pattern: /^\/users\/([^/]+)\/forget$/,
      side: 'write',
      handler: async (req, _url, [id]) => {
        const userId = userIdFrom(id!);
        const result = await commands!.dispatch({ ...idempotencyKey(req), type: 'ForgetUser', data: { userId } });
        return { status: 200, body: result, headers: etag(result.version) };
      },
    },
    {
      method: 'GET',
      pattern: /^\/users$/,
      side: 'read',
      handler: async (_req, url) => {
        const userName = url.searchParams.get('userName');
        if (userName !== null) {
          const user = await queries!.execute({ type: 'GetUserByName', params: { userName } });
          if (user === undefined) throw new HttpProblem(404, 'Not Found', `No active user is named '${userName}'.`);
          return { status: 200, body: user, headers: etag(user.version) };
        }
        const limit = intParam(url, 'limit', 20, 1, MAX_PAGE_SIZE);
        const offset = intParam(url, 'offset', 0, 0, Number.MAX_SAFE_INTEGER);
        return { status: 200, body: await queries!.execute({ type: 'ListUsers', params: { limit, offset } }) };
      },
    },
    {
      method: 'GET',
      pattern: /^\/users\/([^/]+)$/,
      side: 'read',
      handler: async (_req, url, [id]) => {
        const userId = userIdFrom(id!);
        if (url.searchParams.has('version')) {
          const version = intParam(url, 'version', 1, 1, Number.MAX_SAFE_INTEGER);
          const user = await queries!.execute({ type: 'GetUserAsOf', params: { userId, version } });
          if (user === undefined) throw new HttpProblem(404, 'Not Found', `User '${userId}' has no version ${version}.`);
          return { status: 200, body: user, headers: etag(user.version) };
        }
        const user = await queries!.execute({ type: 'GetUser', params: { userId } });
        if (user === undefined) throw new HttpProblem(404, 'Not Found', `No user '${userId}'.`);
        return { status: 200, body: user, headers: etag(user.version) };
      },
    },
    {
      method: 'GET',
      pattern: /^\/users\/([^/]+)\/history$/,
      side: 'read',
      handler: async (_req, _url, [id]) => {
        const userId = userIdFrom(id!);
        const history = await queries!.execute({ type: 'GetUserHistory', params: { userId } });
        if (history === undefined) throw new HttpProblem(404, 'Not Found', `No user '${userId}'.`);
        return { status: 200, body: { userId, events: history } };
      },
    },
  ];
  const routes = allRoutes.filter((route) => (route.side === 'write' ? serveWrite : serveRead));

  return createServer((req, res) => {
    const started = performance.now();
    const url = new URL(req.url ?? '/', 'http://localhost');
    const done = (status: number): void =>
      options.log?.(`${req.method} ${url.pathname} ${status} ${(performance.now() - started).toFixed(1)}ms`);
    void (async () => {
      try {
        if (url.pathname === '/health') {
          send(res, 200, { status: 'ok', role: options.role });
          return done(200);
        }
        const matching = routes.filter((r) => r.pattern.test(url.pathname));
        if (matching.length === 0) throw new HttpProblem(404, 'Not Found', `No resource at ${url.pathname}.`);
        const route = matching.find((r) => r.method === req.method);
        if (route === undefined) {
          throw new HttpProblem(405, 'Method Not Allowed', `${req.method} is not allowed here.`, {}, {
            allow: [...new Set(matching.map((r) => r.method))].join(', '),
          });
        }
        const params = route.pattern.exec(url.pathname)!.slice(1);
        const result = await route.handler(req, url, params);
        send(res, result.status, result.body, result.headers);
        done(result.status);
      } catch (error) {
        const problem = toProblem(error);
        if (problem.status >= 500) console.error(`${req.method} ${url.pathname} failed:`, error);
        if (!res.headersSent) sendProblem(res, problem, url.pathname);
        else res.destroy();
        done(problem.status);
      }
    })();
  });
}
