/**
 * Shared helpers for the user-details example tests: start the real service as a child process,
 * talk raw HTTP to it, and check that what it stored is consistent (gapless streams, read model
 * equal to a full fold of the log, user names reserved by their holders).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { expect } from 'vitest';
import { CryptoShreddingEventStore, type EventStore, type KeyStore, type RecordedEvent } from '../src/index.js';
import { PostgresEventStore, PostgresKeyStore } from '../src/postgres/index.js';
import { SqliteEventStore, SqliteKeyStore } from '../src/sqlite/index.js';
import { userPersonalData } from '../examples/user-details/evolution.js';
import type { UserEvent } from '../examples/user-details/domain/user.js';
import { evolveUserView, type UserReadModel, type UserView } from '../examples/user-details/read-model/user-view.js';

export interface RunningService {
  readonly url: string;
  readonly port: number;
  readonly child: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  alive(): boolean;
}

/** Spawns `serve.ts` and resolves once it prints its URL. */
export function startService(args: readonly string[], env: NodeJS.ProcessEnv): Promise<RunningService> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/user-details/serve.ts', '--port', '0', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let exitedWith: number | string | undefined;
  const exited = new Promise<number | string>((resolve) =>
    child.on('exit', (code, signal) => {
      exitedWith = code ?? signal ?? 'unknown';
      resolve(exitedWith);
    }),
  );
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      const match = /on (http:\/\/127\.0\.0\.1:(\d+))/.exec(output);
      if (match !== null) {
        clearInterval(timer);
        resolve({
          url: match[1]!,
          port: Number(match[2]),
          child,
          output: () => output,
          exited,
          alive: () => exitedWith === undefined,
        });
      } else if (exitedWith !== undefined) {
        clearInterval(timer);
        reject(new Error(`the service exited with ${exitedWith} before listening:\n${output}`));
      }
    }, 20);
    setTimeout(() => {
      clearInterval(timer);
      if (exitedWith === undefined) child.kill('SIGKILL');
      reject(new Error(`the service did not start within 60 s:\n${output}`));
    }, 60_000).unref();
  });
}

/**
 * The CQRS split of the example: a write service (commands) and a read service (queries), started
 * in that order (the write service migrates what the read service reads), with the same `env`.
 */
export async function startWriteAndReadServices(env: NodeJS.ProcessEnv): Promise<{ write: RunningService; read: RunningService }> {
  const write = await startService(['--role', 'write'], env);
  try {
    return { write, read: await startService(['--role', 'read'], env) };
  } catch (error) {
    await killService(write);
    throw error;
  }
}

/** Stops services with SIGTERM (their graceful shutdown) and waits until they have exited. */
export async function stopServices(services: readonly (RunningService | undefined)[]): Promise<void> {
  const running = services.filter((s): s is RunningService => s !== undefined && s.alive());
  for (const service of running) service.child.kill('SIGTERM');
  await Promise.all(running.map((s) => s.exited));
}

/** A JSON request: status and parsed body. */
export async function fetchJson(url: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, any> }> {
  const response = await fetch(url, init);
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

/** Reads until `done` holds (every 50 ms), failing with the last value after `timeoutMs`. */
export async function readUntil<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 15_000): Promise<{ value: T; elapsed: number }> {
  const start = Date.now();
  for (;;) {
    const value = await read();
    if (done(value)) return { value, elapsed: Date.now() - start };
    if (Date.now() - start > timeoutMs) throw new Error(`not there after ${timeoutMs} ms: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Stops a service that a test left running (after a failure), without waiting for grace. */
export async function killService(service: RunningService | undefined): Promise<void> {
  if (service === undefined || !service.alive()) return;
  service.child.kill('SIGKILL');
  await service.exited;
}

export interface RawResponse {
  readonly statusLine: string;
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/**
 * Sends bytes as they are over a socket and reads the first response (the server may close the
 * connection afterwards, or keep it open; the response is complete once Content-Length is read).
 */
export function rawRequest(port: number, bytes: string | Buffer, timeoutMs = 20_000): Promise<RawResponse | undefined> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    let settled = false;
    const finish = (value: RawResponse | undefined, error?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error !== undefined) reject(error);
      else resolve(value);
    };
    const timer = setTimeout(() => finish(undefined, new Error(`no answer within ${timeoutMs} ms to ${JSON.stringify(bytes.toString().slice(0, 80))}`)), timeoutMs);
    const tryParse = (final: boolean): void => {
      const text = data.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) {
        if (final) finish(undefined, data.length === 0 ? undefined : new Error(`incomplete response: ${text}`));
        return;
      }
      const [statusLine = '', ...lines] = text.slice(0, end).split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const length = Number(headers['content-length'] ?? NaN);
      const body = data.subarray(Buffer.byteLength(text.slice(0, end + 4), 'latin1'));
      if (Number.isFinite(length) ? body.length >= length : final) {
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? NaN);
        finish({ statusLine, status, headers, body: body.subarray(0, Number.isFinite(length) ? length : body.length).toString('utf8') });
      }
    };
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      tryParse(false);
    });
    socket.on('end', () => tryParse(true));
    socket.on('close', () => tryParse(true));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      // The server may reset a connection it has answered and closed; what was read counts.
      if (data.length > 0) tryParse(true);
      if (!settled) finish(undefined, error.code === 'ECONNRESET' ? undefined : error);
    });
    socket.write(bytes);
  });
}

/** Polls `check` until it returns true or the deadline passes. */
export async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The example stores emails encrypted (see evolution.ts): read them through its key store. */
function decrypting(store: EventStore): EventStore {
  let keys: KeyStore | undefined;
  if (store instanceof SqliteEventStore) keys = new SqliteKeyStore({ database: store.database });
  else if (store instanceof PostgresEventStore) keys = new PostgresKeyStore({ pool: store.pool, schema: store.schema });
  return keys === undefined ? store : new CryptoShreddingEventStore(store, keys, userPersonalData);
}

async function allRows(readModel: UserReadModel): Promise<UserView[]> {
  const rows: UserView[] = [];
  for (let offset = 0; ; offset += 100) {
    const page = await readModel.list({ limit: 100, offset });
    rows.push(...page.users);
    if (page.users.length < 100) return rows;
  }
}

/**
 * Nothing half-written: every stream's versions are 1..n without gaps, positions grow, the read
 * model equals a full fold of the log, and every active user holds the reservation of its name.
 * Returns the number of events checked.
 */
export async function expectConsistent(store: EventStore, readModel: UserReadModel): Promise<number> {
  const events = (await decrypting(store).readAll().toArray()) as RecordedEvent[];
  const streams = new Map<string, RecordedEvent[]>();
  let lastPosition = 0;
  for (const event of events) {
    expect(event.position).toBeGreaterThan(lastPosition);
    lastPosition = event.position;
    const list = streams.get(event.streamId) ?? [];
    list.push(event);
    streams.set(event.streamId, list);
  }
  const folded = new Map<string, UserView>();
  const holders = new Map<string, string | undefined>();
  for (const [streamId, list] of streams) {
    expect(list.map((e) => e.version), `versions of ${streamId}`).toEqual(list.map((_, i) => i + 1));
    if (streamId.startsWith('user-')) {
      const view = list.reduce<UserView | undefined>((state, e) => evolveUserView(state, e as RecordedEvent<UserEvent>), undefined);
      expect(view, `fold of ${streamId}`).toBeDefined();
      folded.set(view!.id, view!);
    } else if (streamId.startsWith('username-')) {
      let holder: string | undefined;
      for (const e of list) holder = e.type === 'UserNameReserved' ? (e.data as { userId: string }).userId : undefined;
      holders.set(streamId.slice('username-'.length), holder);
    }
  }
  const rows = await allRows(readModel);
  const byId = (a: UserView, b: UserView): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  expect(rows.slice().sort(byId)).toEqual([...folded.values()].sort(byId));
  for (const view of folded.values()) {
    if (view.status === 'active') expect(holders.get(view.userName), `holder of ${view.userName}`).toBe(view.id);
  }
  return events.length;
}
