import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { eventJson } from '../format.js';
import { projectionStatusRows } from '../projection-status.js';
import { lastEvents } from './log-tail.js';
import type { EventfoldConfig } from '../config.js';
import type { OpenedStore } from '../stores.js';
import { isEventfoldError } from '../../errors.js';
import type { AnyEvent, RecordedEvent } from '../../events/types.js';
import type { Projection } from '../../projections/projection.js';
import { APP_CSS } from './page-css.js';
import { APP_HTML } from './page-html.js';
import { APP_JS } from './page-script.js';
import { diffJson } from './diff.js';
import { timeTravel, viewFor } from './time-travel.js';

/** Sent with every response: nothing but this origin's own script, style and fetches. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store',
};

/** Most events a page of the event list or the log returns. */
const MAX_PAGE = 500;
/** Time travel folds the stream from the start; beyond this many events it refuses. */
export const MAX_TIME_TRAVEL_EVENTS = 20_000;

export interface InspectServerOptions {
  readonly opened: OpenedStore;
  readonly config: EventfoldConfig;
  /** Port on 127.0.0.1; 0 picks a free one. */
  readonly port?: number;
}

export interface InspectServer {
  /** `http://127.0.0.1:<port>/` */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function eventView(event: RecordedEvent, previous: RecordedEvent | undefined): Record<string, unknown> {
  return {
    ...eventJson(event),
    // The first event of a stream is compared with nothing (all of it is new).
    changes: diffJson(previous === undefined ? undefined : previous.data, event.data),
  };
}

function intParam(url: URL, name: string, fallback: number, min: number, max: number): number {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === '') return fallback;
  if (!/^\d+$/.test(raw)) throw new HttpError(400, `${name} must be a non-negative integer`);
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min || value > max) throw new HttpError(400, `${name} must be from ${min} to ${max}`);
  return value;
}

function requiredParam(url: URL, name: string): string {
  const value = url.searchParams.get(name);
  if (value === null || value === '') throw new HttpError(400, `${name} is required`);
  return value;
}

/**
 * The event browser's HTTP server: a read-only JSON API plus the page, on 127.0.0.1 only.
 * - Host header check: only `127.0.0.1:<port>`, `localhost:<port>` and `[::1]:<port>`, so a DNS
 *   rebinding page on another name cannot read the API through the browser.
 * - Only GET and HEAD; cross-site fetches (Sec-Fetch-Site: cross-site) are refused.
 * - A strict Content-Security-Policy; the page builds its DOM with textContent only, so stored
 *   text (event data, types, stream ids) is always shown as text, never parsed as markup.
 */
export async function startInspectServer(options: InspectServerOptions): Promise<InspectServer> {
  const { opened, config } = options;
  const views = config.aggregates ?? [];
  const projections = (config.projections ?? []) as unknown as Projection<AnyEvent, unknown>[];
  let allowedHosts = new Set<string>();

  const api: Record<string, (url: URL) => Promise<unknown>> = {
    '/api/info': async () => ({
      store: opened.description,
      kind: opened.kind,
      headPosition: await opened.store.headPosition(),
      readOnly: true,
      aggregates: views.map((view) => view.streamPrefix),
    }),
    '/api/streams': async (url) => {
      if (opened.catalog === undefined) throw new HttpError(501, `the ${opened.kind} store cannot list streams`);
      const limit = intParam(url, 'limit', 50, 1, MAX_PAGE);
      const after = url.searchParams.get('after');
      const streams = await opened.catalog.listStreams({
        prefix: url.searchParams.get('prefix') ?? '',
        ...(after !== null && after !== '' ? { after } : {}),
        limit: limit + 1,
      });
      const page = streams.slice(0, limit);
      return {
        streams: page.map((s) => ({ ...s, lastWrittenAt: s.lastWrittenAt.toISOString() })),
        next: streams.length > limit ? page[page.length - 1]!.streamId : null,
      };
    },
    '/api/stream': async (url) => {
      const streamId = requiredParam(url, 'id');
      const from = intParam(url, 'from', 1, 1, Number.MAX_SAFE_INTEGER);
      const limit = intParam(url, 'limit', 100, 1, MAX_PAGE);
      const version = await opened.store.streamVersion(streamId);
      if (version === 0) throw new HttpError(404, 'no such stream');
      // One event before the page, for the first event's diff.
      const events = await opened.store.readStream(streamId, { fromVersion: Math.max(1, from - 1), limit: limit + 1 }).toArray();
      const page = events
        .map((event, index) => ({ event, previous: index > 0 ? events[index - 1] : undefined }))
        .filter(({ event }) => event.version >= from)
        .slice(0, limit)
        .map(({ event, previous }) => eventView(event, previous));
      return {
        streamId,
        version,
        from,
        events: page,
        aggregate: viewFor(views, streamId)?.streamPrefix ?? null,
      };
    },
    '/api/log': async (url) => {
      const from = intParam(url, 'from', 0, 0, Number.MAX_SAFE_INTEGER);
      const limit = intParam(url, 'limit', 100, 1, MAX_PAGE);
      const head = await opened.store.headPosition();
      // Without `from`: the last `limit` events (a live view starts near the head).
      const events =
        url.searchParams.get('from') === null
          ? await lastEvents(opened.store, head, limit)
          : await opened.store.readAll({ fromPosition: from, limit }).toArray();
      return { headPosition: head, events: events.map((event) => eventView(event, undefined)) };
    },
    '/api/projections': async () => ({
      checkpoints: opened.projections?.description ?? null,
      projections: await projectionStatusRows(opened, projections),
    }),
    '/api/state': async (url) => {
      const streamId = requiredParam(url, 'id');
      const view = viewFor(views, streamId);
      if (view === undefined) throw new HttpError(404, 'no aggregate is configured for this stream');
      const version = await opened.store.streamVersion(streamId);
      if (version === 0) throw new HttpError(404, 'no such stream');
      if (version > MAX_TIME_TRAVEL_EVENTS) throw new HttpError(413, `the stream has more than ${MAX_TIME_TRAVEL_EVENTS} events`);
      const at = intParam(url, 'version', version, 0, version);
      const events = await opened.store.readStream(streamId, { toVersion: Math.max(1, at) }).toArray();
      const frame = timeTravel(view, streamId, events, at);
      const event = at === 0 ? null : eventView(events[at - 1]!, at > 1 ? events[at - 2] : undefined);
      return { ...frame, maxVersion: version, event };
    },
  };

  const assets: Record<string, { type: string; body: string }> = {
    '/': { type: 'text/html; charset=utf-8', body: APP_HTML },
    '/app.js': { type: 'text/javascript; charset=utf-8', body: APP_JS },
    '/app.css': { type: 'text/css; charset=utf-8', body: APP_CSS },
  };

  const send = (res: ServerResponse, status: number, type: string, body: string, head: boolean): void => {
    res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, 'content-length': Buffer.byteLength(body) });
    res.end(head ? undefined : body);
  };
  const sendJson = (res: ServerResponse, status: number, value: unknown, head: boolean): void =>
    send(res, status, 'application/json; charset=utf-8', JSON.stringify(value), head);

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const head = req.method === 'HEAD';
    if (!allowedHosts.has((req.headers.host ?? '').toLowerCase())) {
      send(res, 421, 'text/plain; charset=utf-8', 'This server only answers to 127.0.0.1 and localhost.\n', head);
      return;
    }
    if (req.method !== 'GET' && !head) {
      res.setHeader('allow', 'GET, HEAD');
      send(res, 405, 'text/plain; charset=utf-8', 'The event browser is read-only.\n', head);
      return;
    }
    if (req.headers['sec-fetch-site'] === 'cross-site') {
      send(res, 403, 'text/plain; charset=utf-8', 'Cross-site requests are refused.\n', head);
      return;
    }
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname === '/favicon.ico') {
      res.writeHead(204, SECURITY_HEADERS);
      res.end();
      return;
    }
    const asset = assets[url.pathname];
    if (asset !== undefined) {
      send(res, 200, asset.type, asset.body, head);
      return;
    }
    const route = api[url.pathname];
    if (route === undefined) {
      sendJson(res, 404, { error: 'not found' }, head);
      return;
    }
    try {
      sendJson(res, 200, await route(url), head);
    } catch (error) {
      if (error instanceof HttpError) sendJson(res, error.status, { error: error.message }, head);
      else if (isEventfoldError(error) && (error.code === 'INVALID_STREAM_ID' || error.code === 'INVALID_ARGUMENT')) {
        sendJson(res, 400, { error: error.message }, head);
      } else if (isEventfoldError(error, 'STREAM_NOT_FOUND')) sendJson(res, 404, { error: 'no such stream' }, head);
      else sendJson(res, 500, { error: error instanceof Error ? error.message : String(error) }, head);
    }
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  allowedHosts = new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]);
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
