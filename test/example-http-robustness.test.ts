import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUserDetailsApp, type UserDetailsApp } from '../examples/user-details/app.js';
import { hashPassword, type PasswordHash } from '../examples/user-details/domain/password.js';
import fc from 'fast-check';
import { HttpProblem, toProblem } from '../examples/user-details/http/problems.js';
import { ifMatch } from '../examples/user-details/http/request.js';
import { createUserDetailsServer } from '../examples/user-details/http/server.js';
import { openSqlite } from '../examples/user-details/infrastructure.js';
import { killService, rawRequest, startService, type RunningService } from './example-support.js';

/** Library wording that must never reach an HTTP client. */
const LIBRARY_WORDING = /repository|find\(\)|aggregate|stream|migrate|eventfold|SQLSTATE|postgres|sqlite/i;

describe('the example process survives malformed requests', () => {
  let dir: string;
  let service: RunningService | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'eventfold-robust-'));
    service = await startService([], { EVENTFOLD_DATA_DIR: dir });
  });

  afterAll(async () => {
    await killService(service);
    rmSync(dir, { recursive: true, force: true });
  });

  const malformed: readonly (readonly [string, string])[] = [
    ['a target that parses as a protocol-relative URL', 'GET //[ HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['the same on a write route', 'POST //[/password HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}'],
    ['an absolute-form target with a bad host', 'GET http://[/users HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['an asterisk-form target', 'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['a CONNECT (proxy tunnel) request', 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'],
    ['an HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'],
    ['bad percent-encoding', 'GET /users/%ZZ HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['no request line at all', '\x16\x03\x01\x02\x00garbage\r\n\r\n'],
    ['a non-numeric Content-Length', 'POST /users HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'],
    ['oversized headers', `GET /users HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`],
    ['a header without a colon', 'GET /users HTTP/1.1\r\nHost x\r\n\r\n'],
    ['a malformed If-Match', 'POST /users/u/password HTTP/1.1\r\nHost: x\r\nIf-Match: "1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}'],
  ];

  for (const [what, bytes] of malformed) {
    it(`answers ${what} with a 4xx and stays up`, async () => {
      const response = await rawRequest(service!.port, bytes);
      expect(response, `an answer to ${JSON.stringify(bytes.slice(0, 40))}`).toBeDefined();
      expect(response!.status).toBeGreaterThanOrEqual(400);
      expect(response!.status).toBeLessThan(500);
      const health = await fetch(`${service!.url}/health`);
      expect(health.status).toBe(200);
      expect(service!.alive()).toBe(true);
    });
  }

  it('logged no 500 and no crash', () => {
    expect(service!.output()).not.toMatch(/ 500 |Uncaught|TypeError/);
    expect(service!.alive()).toBe(true);
  });
});

describe('password change: cheap checks before the hash', () => {
  let dir: string;
  let app: UserDetailsApp;
  let server: Server;
  let base: string;
  let port: number;
  let hashes = 0;
  /** While set, hashes wait for it: lets a test hold hashes in flight. */
  let hold: Promise<void> | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'eventfold-cheap-'));
    const countingHash = async (password: string): Promise<PasswordHash> => {
      hashes += 1;
      if (hold !== undefined) await hold;
      return hashPassword(password);
    };
    app = await createUserDetailsApp(openSqlite(join(dir, 'users.sqlite')), {
      projection: 'inline',
      hash: countingHash,
      hashing: { maxConcurrent: 1, maxWaiting: 1 },
    });
    server = createUserDetailsServer({ role: 'all', commands: app.commands, queries: app.queries, requestTimeoutMs: 3_000 });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    base = `http://127.0.0.1:${port}`;
    await app.commands.dispatch({
      type: 'RegisterUser',
      data: { userId: 'ivan', userName: 'ivan', email: 'ivan@example.com', password: 'ivan-password' },
    });
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function changePassword(userId: string, ifMatch: string | undefined, password = 'a-new-password') {
    const response = await fetch(`${base}/users/${userId}/password`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(ifMatch === undefined ? {} : { 'if-match': ifMatch }) },
      body: JSON.stringify({ password }),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, text, json: JSON.parse(text) as Record<string, unknown> };
  }

  const versionOfIvan = async (): Promise<number> => (await app.write.users.load('ivan')).version;

  it('an unknown user is a 404 in the API’s words, without hashing', async () => {
    const before = hashes;
    const answer = await changePassword('nobody', '"1"');
    expect(answer.status).toBe(404);
    expect(answer.json).toMatchObject({ status: 404, code: 'USER_NOT_FOUND', detail: "No user 'nobody'." });
    expect(answer.text).not.toMatch(LIBRARY_WORDING);
    expect(hashes).toBe(before);
    expect((await changePassword('nobody', '*')).status).toBe(404);
    expect(hashes).toBe(before);
  });

  it('a stale If-Match is a 412 with the current version, without hashing or writing', async () => {
    const version = await versionOfIvan();
    const before = hashes;
    const answer = await changePassword('ivan', `"${version + 5}"`);
    expect(answer.status).toBe(412);
    expect(answer.json).toMatchObject({ code: 'VERSION_MISMATCH', currentVersion: version });
    expect(answer.headers.get('etag')).toBe(`"${version}"`);
    expect(answer.text).not.toMatch(LIBRARY_WORDING);
    expect(hashes).toBe(before);
    expect(await versionOfIvan()).toBe(version);
  });

  it('a weak entity tag never matches If-Match (412), even for the current version', async () => {
    const version = await versionOfIvan();
    const before = hashes;
    const answer = await changePassword('ivan', `W/"${version}"`);
    expect(answer.status).toBe(412);
    expect(hashes).toBe(before);
    expect(await versionOfIvan()).toBe(version);
  });

  it('If-Match: * means "exists"; a list matches when any strong tag is the current version', async () => {
    const version = await versionOfIvan();
    expect((await changePassword('ivan', '*')).status).toBe(200);
    expect(await versionOfIvan()).toBe(version + 1);
    const listed = await changePassword('ivan', `"999", W/"${version + 1}", "${version + 1}"`);
    expect(listed.status).toBe(200);
    expect(listed.headers.get('etag')).toBe(`"${version + 2}"`);
    expect((await changePassword('ivan', `"abc", W/"${version + 2}"`)).status).toBe(412);
    expect((await changePassword('ivan', '*, "1"')).status).toBe(400);
    expect((await changePassword('ivan', '"1" "2"')).status).toBe(400);
  });

  it('an over-long password is refused before hashing', async () => {
    const version = await versionOfIvan();
    const before = hashes;
    const answer = await changePassword('ivan', `"${version}"`, 'x'.repeat(1000));
    expect(answer.status).toBe(400);
    expect(hashes).toBe(before);
  });

  it('a body declared larger than the limit is refused before it is read (413, connection closed)', async () => {
    const answer = await rawRequest(
      port,
      'POST /users/ivan/password HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nIf-Match: "1"\r\nContent-Length: 1000000000\r\n\r\n{"pass',
    );
    expect(answer?.status).toBe(413);
    expect(answer?.headers['connection']).toBe('close');
  });

  it('a body announced but never sent is answered 408 once the request timeout passes, without hashing', async () => {
    const before = hashes;
    const answer = await rawRequest(
      port,
      'POST /users/ivan/password HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nIf-Match: *\r\nContent-Length: 40\r\n\r\n{"pass',
      30_000,
    );
    expect(answer?.status).toBe(408);
    expect(answer?.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(answer!.body)).toMatchObject({ status: 408 });
    expect(hashes).toBe(before);
  });

  it('sheds load once the hash queue is full: 503 with Retry-After, nothing written', async () => {
    let release!: () => void;
    hold = new Promise((resolve) => (release = resolve));
    try {
      const version = await versionOfIvan();
      const before = hashes;
      // The gate admits one hash and lets one wait: the first takes the slot and is held there.
      const first = changePassword('ivan', `"${version}"`, 'first-new-password');
      const deadline = Date.now() + 30_000;
      while (hashes < before + 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(hashes).toBe(before + 1);
      // Of two more, one waits for the slot and the other is refused at once.
      const second = changePassword('ivan', `"${version}"`, 'second-new-password');
      const third = changePassword('ivan', `"${version}"`, 'third-new-password');
      const refused = await Promise.race([second, third]);
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(refused.json).toMatchObject({ code: 'SERVICE_BUSY' });
      release();
      const others = [await first, ...(await Promise.all([second, third])).filter((a) => a !== refused)];
      // The first saves; the one that waited passed the version check before the first saved, so its save conflicts.
      expect(others.map((a) => a.status).sort()).toEqual([200, 412]);
      expect(await versionOfIvan()).toBe(version + 1);
    } finally {
      release();
      hold = undefined;
    }
  });
});

describe('errors are answered by code, in the API’s own words', () => {
  const leaky = (code: string, fields: Record<string, unknown> = {}): Error =>
    Object.assign(new Error(`secret internals: Use repository.find() when absence is expected (${code})`), { code }, fields);

  it('maps client mistakes to 4xx without the library message', () => {
    const cases: [string, number][] = [
      ['AGGREGATE_NOT_FOUND', 404],
      ['STREAM_NOT_FOUND', 404],
      ['USER_NOT_FOUND', 404],
      ['USER_NAME_TAKEN', 409],
      ['USER_DEACTIVATED', 409],
      ['USER_ALREADY_REGISTERED', 409],
      ['INVALID_ARGUMENT', 400],
      ['INVALID_EVENT', 400],
      ['INVALID_STREAM_ID', 400],
      ['BATCH_TOO_LARGE', 400],
      ['WEAK_PASSWORD', 400],
      ['PASSWORD_TOO_LONG', 400],
      ['CONCURRENCY_CONFLICT', 412],
      ['STREAM_ALREADY_EXISTS', 412],
      ['AGGREGATE_ALREADY_EXISTS', 412],
    ];
    for (const [code, status] of cases) {
      const problem = toProblem(leaky(code, { actualVersion: 4 }), { userId: 'u1' });
      expect(problem.status, code).toBe(status);
      expect(problem.message, code).not.toMatch(/secret|repository/);
    }
  });

  it('an unavailable store is a 503 with Retry-After, on every code that says so, also as a cause', () => {
    for (const code of ['STORE_UNAVAILABLE', 'STORE_CLOSED', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', '57P01', '57P03', '08006', '53300', '57014', 'SQLITE_BUSY']) {
      const problem = toProblem(leaky(code));
      expect(problem.status, code).toBe(503);
      expect(problem.headers['retry-after'], code).toBe('1');
      expect(problem.message).not.toMatch(/secret/);
      const wrapped = toProblem(Object.assign(new Error('outer'), { code: 'SOMETHING', cause: leaky(code) }));
      expect(wrapped.status, `${code} as a cause`).toBe(503);
    }
  });

  it('anything else is a 500 that says nothing of the cause', () => {
    for (const error of [new TypeError('x is undefined'), leaky('23505'), leaky('WHATEVER'), leaky('constructor'), leaky('__proto__'), 'a string', undefined]) {
      const problem = toProblem(error);
      expect(problem.status).toBe(500);
      expect(problem.message).toBe('Something went wrong on our side.');
    }
  });
});

describe('If-Match parsing (RFC 9110 §13.1.1)', () => {
  const versionArb = fc.integer({ min: 0, max: 999_999 });
  const ows = fc.constantFrom('', ' ', '\t', '  ');

  it('a list of strong tags yields exactly their versions; weak tags are never among them', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ version: versionArb, weak: fc.boolean(), bare: fc.boolean() }), { minLength: 1, maxLength: 6 }),
        ows,
        ows,
        (tags, before, after) => {
          const header = tags
            .map((t) => (t.weak ? `W/"${t.version}"` : t.bare ? String(t.version) : `"${t.version}"`))
            .join(`${before},${after}`);
          const expected = tags.filter((t) => !t.weak).map((t) => t.version);
          const parsed = ifMatch(header, true);
          expect(parsed).toEqual(expected.length === 1 ? expected[0] : expected);
        },
      ),
    );
  });

  it('any header is either a precondition or a 400, never another failure', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 60 }), (header) => {
        try {
          const parsed = ifMatch(header, true);
          expect(parsed === 'exists' || typeof parsed === 'number' || Array.isArray(parsed)).toBe(true);
        } catch (error) {
          expect(error).toBeInstanceOf(HttpProblem);
          expect((error as HttpProblem).status).toBe(400);
        }
      }),
    );
  });

  it('* alone means "exists"; missing is 428 on updates and nothing on DELETE', () => {
    expect(ifMatch('*', true)).toBe('exists');
    expect(ifMatch(' * ', true)).toBe('exists');
    expect(() => ifMatch('*, "1"', true)).toThrow(HttpProblem);
    expect(() => ifMatch(undefined, true)).toThrow(expect.objectContaining({ status: 428 }));
    expect(ifMatch(undefined, false)).toBeUndefined();
    expect(ifMatch('"abc"', true)).toEqual([]);
  });
});
