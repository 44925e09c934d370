import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import type { WriteSide } from '../commands.js';
import { MAX_PASSWORD_LENGTH } from '../domain/user.js';
import type { QuerySide } from '../queries.js';
import { MAX_PAGE_SIZE } from '../queries.js';
import { badRequest, HttpProblem, problemBody, send, sendProblem, toProblem } from './problems.js';
import { drainBody, ifMatch, intParam, MAX_BODY_BYTES, parseTarget, readJson, stringField, userIdFrom } from './request.js';

/** Which half of CQRS this process serves: commands, queries, or both. */
export type Role = 'write' | 'read' | 'all';

export interface HttpOptions {
  readonly role: Role;
  readonly commands?: WriteSide['commandBus'];
  readonly queries?: QuerySide;
  /** Request log lines (method, path, status, ms). Never bodies: they may hold passwords. */
  readonly log?: (line: string) => void;
  /** A request (headers and body) must arrive within this time, else 408. Default 30 s. */
  readonly requestTimeoutMs?: number;
  /** Unexpected failures (answered 500): the error itself, for the operator, never for the client. */
  readonly onError?: (error: unknown, request: string) => void;
}

const etag = (version: number): Record<string, string> => ({ etag: `"${version}"` });

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
          type: 'RegisterUser',
          data: {
            userId,
            userName: stringField(body, 'userName'),
            email: stringField(body, 'email'),
            password: stringField(body, 'password', MAX_PASSWORD_LENGTH),
          },
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
        const originalVersion = ifMatch(req.headers['if-match'], true)!;
        const body = await readJson(req);
        const result = await commands!.dispatch({
          type: 'ChangePassword',
          data: { userId, newPassword: stringField(body, 'password', MAX_PASSWORD_LENGTH), originalVersion },
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
        const originalVersion = ifMatch(req.headers['if-match'], true)!;
        const body = await readJson(req);
        const result = await commands!.dispatch({ type: 'ChangeEmail', data: { userId, email: stringField(body, 'email'), originalVersion } });
        return { status: 200, body: result, headers: etag(result.version) };
      },
    },
    {
      method: 'POST',
      pattern: /^\/users\/([^/]+)\/name$/,
      side: 'write',
      handler: async (req, _url, [id]) => {
        const userId = userIdFrom(id!);
        const originalVersion = ifMatch(req.headers['if-match'], true)!;
        const body = await readJson(req);
        const result = await commands!.dispatch({ type: 'RenameUser', data: { userId, userName: stringField(body, 'userName'), originalVersion } });
        return { status: 200, body: result, headers: etag(result.version) };
      },
    },
    {
      method: 'DELETE',
      pattern: /^\/users\/([^/]+)$/,
      side: 'write',
      handler: async (req, url, [id]) => {
        const userId = userIdFrom(id!);
        const originalVersion = ifMatch(req.headers['if-match'], false);
        const reason = url.searchParams.get('reason') ?? 'deleted through the API';
        if (reason.length > 200) throw badRequest("'reason' is too long.");
        const result = await commands!.dispatch({
          type: 'DeactivateUser',
          data: { userId, reason, ...(originalVersion === undefined ? {} : { originalVersion }) },
        });
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
          if (userName.length > 64) throw badRequest("'userName' is too long.", { parameter: 'userName' });
          const user = await queries!.execute({ type: 'GetUserByName', params: { userName } });
          if (user === undefined) throw new HttpProblem(404, 'Not Found', 'No active user has this user name.', { code: 'USER_NOT_FOUND' });
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
          if (user === undefined) throw new HttpProblem(404, 'Not Found', `User '${userId}' has no version ${version}.`, { code: 'VERSION_NOT_FOUND' });
          return { status: 200, body: user, headers: etag(user.version) };
        }
        const user = await queries!.execute({ type: 'GetUser', params: { userId } });
        if (user === undefined) throw new HttpProblem(404, 'Not Found', `No user '${userId}'.`, { code: 'USER_NOT_FOUND' });
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
        if (history === undefined) throw new HttpProblem(404, 'Not Found', `No user '${userId}'.`, { code: 'USER_NOT_FOUND' });
        return { status: 200, body: { userId, events: history } };
      },
    },
  ];
  const routes = allRoutes.filter((route) => (route.side === 'write' ? serveWrite : serveRead));

  // The response in progress on each connection (until it finishes and the connection stays open).
  // A parse error or timeout on that connection may answer only if this response has not started.
  const current = new WeakMap<Socket, ServerResponse>();
  // Responses answered by the 'clientError' path instead (a request timeout): the handler stays quiet.
  const answeredElsewhere = new WeakSet<ServerResponse>();
  const requestTimeout = options.requestTimeoutMs ?? 30_000;
  const server = createServer(
    {
      requestTimeout,
      headersTimeout: Math.min(10_000, requestTimeout),
      connectionsCheckingInterval: Math.max(100, Math.min(30_000, requestTimeout / 4)),
    },
    (req, res) => {
      const started = performance.now();
      const socket = req.socket;
      current.set(socket, res);
      res.on('finish', () => {
        if (res.getHeader('connection') !== 'close' && current.get(socket) === res) current.delete(socket);
      });
      // Stopping: answer this request, then let the connection go instead of waiting for another.
      if (!server.listening) res.setHeader('connection', 'close');
      let path: string | undefined;
      let userId: string | undefined;
      const done = (status: number): void =>
        options.log?.(`${req.method} ${path ?? '(bad target)'} ${status} ${(performance.now() - started).toFixed(1)}ms`);
      const handle = async (): Promise<void> => {
        try {
          const url = parseTarget(req.url);
          path = url.pathname;
          if (url.pathname === '/health') {
            send(res, 200, { status: 'ok', role: options.role });
            return done(200);
          }
          const matching = routes.filter((r) => r.pattern.test(url.pathname));
          if (matching.length === 0) throw new HttpProblem(404, 'Not Found', 'No resource at this path.');
          const route = matching.find((r) => r.method === req.method);
          if (route === undefined) {
            throw new HttpProblem(405, 'Method Not Allowed', 'This method is not allowed here.', {}, {
              allow: [...new Set(matching.map((r) => r.method))].join(', '),
            });
          }
          const params = route.pattern.exec(url.pathname)!.slice(1);
          userId = params[0];
          const result = await route.handler(req, url, params);
          send(res, result.status, result.body, result.headers);
          done(result.status);
        } catch (error) {
          // (req.destroyed alone says nothing: a fully read request is destroyed too.)
          if (answeredElsewhere.has(res) || res.destroyed || (res.socket?.destroyed ?? false)) {
            // The client went away mid-request: nobody to answer, nothing to report.
            return done(499);
          }
          const shownId = userId === undefined ? undefined : safeUserId(userId);
          const problem = toProblem(error, shownId === undefined ? {} : { userId: shownId });
          if (problem.status >= 500 && problem.status !== 503) options.onError?.(error, `${req.method} ${path ?? '(bad target)'}`);
          if (res.headersSent) {
            res.destroy();
          } else {
            // A body left unread (an error before reading it) is drained first; one too large to drain
            // (a 413) means the connection closes after this answer.
            const reusable = problem.status !== 413 && (await drainBody(req, MAX_BODY_BYTES, 5_000));
            sendProblem(res, problem, path, reusable ? {} : { connection: 'close' });
          }
          done(problem.status);
        }
      };
      handle().catch((error: unknown) => {
        // Only a failure while answering gets here (the handler catches everything else).
        options.onError?.(error, 'answering a request');
        res.destroy();
      });
    },
  );

  // CONNECT (a proxy tunnel) bypasses the request handler: refuse it in the same words.
  server.on('connect', (_req: IncomingMessage, socket: Socket) => {
    writeRawProblem(socket, new HttpProblem(405, 'Method Not Allowed', 'This method is not allowed here.'));
  });

  // Requests Node cannot parse (bad request line, oversized headers, timeouts) never reach the
  // handler: answer them here with a problem+json and close, instead of a bare reset.
  server.on('clientError', (error: Error & { code?: string }, socket: Socket) => {
    const inProgress = current.get(socket);
    if (!socket.writable || error.code === 'ECONNRESET' || (inProgress !== undefined && (inProgress.headersSent || inProgress.writableEnded))) {
      socket.destroy();
      return;
    }
    if (inProgress !== undefined) answeredElsewhere.add(inProgress);
    const problem =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? new HttpProblem(431, 'Request Header Fields Too Large', 'The request headers are too large.')
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? new HttpProblem(408, 'Request Timeout', 'The request took too long to arrive.')
          : new HttpProblem(400, 'Bad Request', 'The request is not valid HTTP.');
    writeRawProblem(socket, problem);
  });
  return server;
}

/** A problem+json answer written straight to the socket (no request object exists), then close. */
function writeRawProblem(socket: Socket, problem: HttpProblem): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = problemBody(problem, undefined);
  socket.end(
    `HTTP/1.1 ${problem.status} ${problem.title}\r\nContent-Type: application/problem+json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** The id as shown back to a client: only when it is a valid id (it then has no markup or control characters). */
function safeUserId(raw: string): string | undefined {
  try {
    return userIdFrom(raw);
  } catch {
    return undefined;
  }
}
