import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { categoryOf, formatDuration } from '../src/cli/command.js';
import { DriverMissingError } from '../src/cli/errors.js';
import { isSafeText, safeJsonStringify, sanitizeStreamId, sanitizeText } from '../src/cli/sanitize.js';
import { chooseStore, importDriver, redactUrl } from '../src/cli/stores.js';
import { parseCheckpointSetting } from '../src/cli/checkpoint-locations.js';
import { colourEnabled, createStyle } from '../src/cli/style.js';
import { applyChanges, diffJson } from '../src/cli/inspect/diff.js';
import { COMMANDS } from '../src/cli/main.js';
import { runCli } from './support/cli-process.js';

// eslint-disable-next-line no-control-regex
const RAW_UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/;
const anyText = fc.string({ unit: 'binary', maxLength: 60 });
const hostileText = fc.string({
  unit: fc.oneof(
    fc.constantFrom('\u001b', '\u009b', '\u0007', '\u202e', '\u2066', '\u200f', '\u0085', '\n', '\r', '[', ']', 'm', '2', 'J', ';'),
    fc.string({ minLength: 1, maxLength: 1, unit: 'binary' }),
  ),
  maxLength: 40,
});
const json = fc.jsonValue({ maxDepth: 4 });

describe('sanitizing stored text for the terminal', () => {
  it('leaves no control, C1 or bidi character in sanitized text, and only adds visible escapes', () => {
    fc.assert(
      fc.property(fc.oneof(anyText, hostileText), (text) => {
        const safe = sanitizeText(text);
        expect(safe).not.toMatch(RAW_UNSAFE);
        expect(isSafeText(safe)).toBe(true);
        // Text without anything to escape is shown unchanged.
        if (!RAW_UNSAFE.test(text)) expect(safe).toBe(text);
      }),
    );
  });

  it('stream ids also show every invisible format character as an escape, and ordinary ids unchanged', () => {
    const invisible = fc.constantFrom('\u200b', '\u200d', '\u00ad', '\ufeff', '\u2060', '\u{e0041}', '\u202e', '\u0085');
    const idText = fc.string({ unit: fc.oneof(invisible, fc.string({ minLength: 1, maxLength: 1, unit: 'grapheme' })), maxLength: 30 });
    fc.assert(
      fc.property(fc.oneof(idText, hostileText), (id) => {
        const shown = sanitizeStreamId(id);
        expect(shown).not.toMatch(RAW_UNSAFE);
        expect(shown).not.toMatch(/[\p{Cf}]/u);
        if (!RAW_UNSAFE.test(id) && !/[\p{Cf}]/u.test(id)) expect(shown).toBe(id);
      }),
    );
    expect(sanitizeStreamId('user-\u202egnp.exe')).toBe('user-\\u202egnp.exe');
    expect(sanitizeStreamId('a\u{e0041}b')).toBe('a\\udb40\\udc41b');
  });

  it('styles never let the painted text carry an escape of its own', () => {
    fc.assert(
      fc.property(fc.oneof(anyText, hostileText), (text) => {
        const painted = createStyle(true).paint(['bold', 'yellow'], text);
        expect(painted.replace(/\u001b\[\d+m/g, '')).not.toMatch(RAW_UNSAFE);
        expect(createStyle(false).red(text)).toBe(sanitizeText(text));
      }),
    );
  });

  it('keeps JSON output parseable to the same value, with no raw unsafe character but layout newlines', () => {
    fc.assert(
      fc.property(json, fc.oneof(anyText, hostileText), fc.constantFrom(undefined, 2), (value, text, indent) => {
        const wrapped = { value, text, [text]: text };
        const out = safeJsonStringify(wrapped, indent);
        expect(JSON.parse(out)).toEqual(JSON.parse(JSON.stringify(wrapped)));
        expect(out.replace(/\n/g, '')).not.toMatch(RAW_UNSAFE);
      }),
    );
  });
});

describe('JSON diff', () => {
  it('lists changes that turn the first value into the second', () => {
    fc.assert(
      fc.property(json, json, (a, b) => {
        const changes = diffJson(a, b, Number.MAX_SAFE_INTEGER);
        expect(applyChanges(a, changes)).toEqual(b);
        if (JSON.stringify(a) === JSON.stringify(b)) expect(changes).toEqual([]);
      }),
    );
  });

  it('treats a "__proto__" key as the ordinary key it is in event data', () => {
    const after = JSON.parse('{"__proto__": {"admin": true}, "n": 1}') as unknown;
    const changes = diffJson({ n: 1 }, after);
    expect(changes).toEqual([{ path: ['__proto__'], kind: 'added', after: { admin: true } }]);
    const applied = applyChanges({ n: 1 }, changes) as Record<string, unknown>;
    expect(Object.getPrototypeOf(applied)).toBe(Object.prototype);
    expect(applied).toEqual(after);
    expect(JSON.stringify(applied)).toBe('{"n":1,"__proto__":{"admin":true}}');
    expect(({} as Record<string, unknown>)['admin']).toBeUndefined();
  });

  it('names added, removed and changed paths', () => {
    expect(diffJson({ a: 1, b: { c: [1, 2] }, gone: true }, { a: 2, b: { c: [1, 2, 3] }, added: 'x' })).toEqual([
      { path: ['a'], kind: 'changed', before: 1, after: 2 },
      { path: ['b', 'c', 2], kind: 'added', after: 3 },
      { path: ['gone'], kind: 'removed', before: true },
      { path: ['added'], kind: 'added', after: 'x' },
    ]);
  });
});

describe('--checkpoints settings', () => {
  it('reads paths, URLs with a schema, KV buckets and the object forms; refuses other URLs', () => {
    expect(parseCheckpointSetting('read.sqlite', '/app')).toEqual({ kind: 'sqlite', path: '/app/read.sqlite', given: 'read.sqlite' });
    expect(parseCheckpointSetting('sqlite:/data/r.db', '/app')).toEqual({ kind: 'sqlite', path: '/data/r.db', given: '/data/r.db' });
    expect(parseCheckpointSetting({ sqlite: 'r.db' }, '/app')).toMatchObject({ kind: 'sqlite', path: '/app/r.db' });
    expect(parseCheckpointSetting('postgres://u:p@h/db?schema=read&sslmode=disable', '/app')).toEqual({
      kind: 'postgres',
      url: 'postgres://u:p@h/db?sslmode=disable',
      schema: 'read',
    });
    expect(parseCheckpointSetting({ postgres: 'postgres://h/db', schema: 's' }, '/app')).toEqual({ kind: 'postgres', url: 'postgres://h/db', schema: 's' });
    expect(parseCheckpointSetting('nats-kv:cps', '/app')).toEqual({ kind: 'nats-kv', bucket: 'cps' });
    expect(parseCheckpointSetting({ natsKv: 'cps' }, '/app')).toEqual({ kind: 'nats-kv', bucket: 'cps' });
    expect(() => parseCheckpointSetting('mysql://h/db', '/app')).toThrow(/SQLite file path, a postgres:\/\/ URL or nats-kv:<bucket>/);
    expect(() => parseCheckpointSetting('', '/app')).toThrow(/'checkpoints' must be/);
    expect(() => parseCheckpointSetting({ redis: 'x' } as never, '/app')).toThrow(/'checkpoints' must be/);
  });
});

describe('CLI helpers', () => {
  it('takes the category as the stream id up to the first dash', () => {
    expect(categoryOf('user-1')).toBe('user');
    expect(categoryOf('user-1-2')).toBe('user');
    expect(categoryOf('standalone')).toBe('standalone');
    fc.assert(fc.property(fc.string({ maxLength: 20 }).filter((s) => !s.includes('-')), fc.string(), (cat, rest) => categoryOf(`${cat}-${rest}`) === cat));
  });

  it('decides colour from the terminal, NO_COLOR, FORCE_COLOR, TERM=dumb and --no-color', () => {
    expect(colourEnabled({}, true, false)).toBe(true);
    expect(colourEnabled({}, false, false)).toBe(false);
    expect(colourEnabled({ NO_COLOR: '1' }, true, false)).toBe(false);
    expect(colourEnabled({ NO_COLOR: '' }, true, false)).toBe(true);
    expect(colourEnabled({ FORCE_COLOR: '1' }, false, false)).toBe(true);
    expect(colourEnabled({ FORCE_COLOR: '0' }, true, false)).toBe(true);
    expect(colourEnabled({ FORCE_COLOR: '1', NO_COLOR: '1' }, true, false)).toBe(false);
    expect(colourEnabled({ TERM: 'dumb' }, true, false)).toBe(false);
    expect(colourEnabled({}, true, true)).toBe(false);
  });

  it('chooses --db over the configuration over DATABASE_URL, and says what to do when none is there', () => {
    const env = { DATABASE_URL: 'postgres://env/db' };
    expect(chooseStore('x.db', undefined, 'cfg.db', env).target).toBe('x.db');
    expect(chooseStore(undefined, undefined, { postgres: 'postgres://cfg/db', schema: 's1' }, env)).toEqual({ target: 'postgres://cfg/db', schema: 's1' });
    expect(chooseStore(undefined, 's2', { postgres: 'postgres://cfg/db', schema: 's1' }, env).schema).toBe('s2');
    expect(chooseStore(undefined, undefined, undefined, env).target).toBe('postgres://env/db');
    expect(chooseStore(undefined, undefined, { sqlite: 'a.db' }, {}).target).toBe('sqlite:a.db');
    expect(() => chooseStore(undefined, undefined, undefined, {})).toThrow(/No store given: pass --db/);
  });

  it('hides the password of a PostgreSQL URL', () => {
    expect(redactUrl('postgres://user:secret@host:5432/db')).toBe('postgres://user:***@host:5432/db');
    expect(redactUrl('postgres://user@host/db')).not.toContain('***');
  });

  it('turns a missing driver package into DriverMissingError naming the package to install', async () => {
    const missing = Object.assign(new Error("Cannot find package 'better-sqlite3' imported from /x/dist/bin/chunk.js"), {
      code: 'ERR_MODULE_NOT_FOUND',
    });
    const error = await importDriver(() => Promise.reject(missing), 'better-sqlite3', 'A SQLite store').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DriverMissingError);
    expect((error as DriverMissingError).code).toBe('DRIVER_MISSING');
    expect((error as Error).message).toBe(
      "A SQLite store needs the 'better-sqlite3' package, which is not installed. Install it with: npm install better-sqlite3",
    );
    // Any other failure (another missing module, a bug) passes through unchanged.
    const other = Object.assign(new Error("Cannot find package 'left-pad'"), { code: 'ERR_MODULE_NOT_FOUND' });
    await expect(importDriver(() => Promise.reject(other), 'pg', 'A PostgreSQL store')).rejects.toBe(other);
    await expect(importDriver(() => Promise.resolve(42), 'pg', 'x')).resolves.toBe(42);
  });

  it('formats durations for the ETA', () => {
    expect(formatDuration(850)).toBe('850ms');
    expect(formatDuration(12_400)).toBe('12s');
    expect(formatDuration(185_000)).toBe('3m 05s');
    expect(formatDuration(3_720_000)).toBe('1h 02m');
  });
});

describe('eventfold --help and usage errors (spawned)', () => {
  it('prints help for every command with exit code 0', async () => {
    for (const command of COMMANDS) {
      for (const args of command.name === 'read' ? [['read', '--help'], ['help', 'read'], ['read', '-h']] : [[command.name, '--help']]) {
        const result = await runCli(args);
        expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(0);
        expect(result.stdout).toMatch(new RegExp(`^Usage: eventfold ${command.name}`));
      }
    }
    const overview = await runCli(['--help']);
    expect(overview.code).toBe(0);
    for (const command of COMMANDS) expect(overview.stdout).toContain(`  ${command.name}`);
  });

  it('exits 2 with one line for no command, an unknown command, or no store', async () => {
    const none = await runCli([]);
    expect(none.code).toBe(2);
    expect(none.stdout).toMatch(/^Usage: eventfold <command>/);
    const unknown = await runCli(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe("eventfold: error: Unknown command 'frobnicate'. Run 'eventfold --help' for the list.\n");
    const noStore = await runCli(['streams']);
    expect(noStore.code).toBe(2);
    expect(noStore.stderr).toMatch(/^eventfold: error: No store given: pass --db .*\n$/);
    const badScheme = await runCli(['streams', '--db', 'mysql://x/y']);
    expect(badScheme.code).toBe(2);
    expect(badScheme.stderr).toMatch(/Unknown store URL scheme 'mysql:'/);
  });
});

describe('eventfold configuration files and pipes (spawned)', () => {
  it('reports a configuration file that fails to load or has the wrong shape in one line, exit 2', async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'eventfold-cli-config-'));
    try {
      const cases: [string, RegExp][] = [
        ['export default 42;\n', /must export an object, got number/],
        ['export default { projections: {} };\n', /'projections' in .* must be an array/],
        ['export default { aggregates: [{ streamPrefix: "user" }] };\n', /needs a streamPrefix and either an Aggregate class/],
        ['export default {;\n', /Cannot load the configuration file .*eventfold\.config\.mjs/],
        ['throw new Error("boom in config");\n', /Cannot load the configuration file .*: boom in config/],
      ];
      for (const [body, pattern] of cases) {
        writeFileSync(join(dir, 'eventfold.config.mjs'), body);
        const result = await runCli(['streams', '--db', join(dir, 'none.db')], { cwd: dir });
        expect(result.code, body).toBe(2);
        expect(result.stderr.trimEnd().split('\n'), body).toHaveLength(1);
        expect(result.stderr, body).toMatch(pattern);
      }
      const missing = await runCli(['streams', '--config', 'nope.mjs'], { cwd: dir });
      expect(missing.code).toBe(2);
      expect(missing.stderr).toBe("eventfold: error: The configuration file 'nope.mjs' does not exist.\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stops quietly when the reader of its output goes away (| head)', async () => {
    const { execFile } = await import('node:child_process');
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { SqliteEventStore } = await import('../src/sqlite/index.js');
    const dir = mkdtempSync(join(tmpdir(), 'eventfold-cli-pipe-'));
    try {
      const path = join(dir, 'many.db');
      const store = new SqliteEventStore({ path });
      for (let i = 0; i < 20; i++) {
        const events = Array.from({ length: 250 }, (_, n) => ({ type: 'Counted', data: { n: i * 250 + n, pad: 'x'.repeat(200) } }));
        await store.append('counter-1', events, { expectedVersion: 'any' });
      }
      await store.close();
      const { bin, tsxLoader } = await import('./support/cli-process.js');
      const { readFileSync } = await import('node:fs');
      const errFile = join(dir, 'stderr.txt');
      // A real shell pipeline: head exits after one line and the CLI's stdout gets EPIPE.
      const script = `"${process.execPath}" --import "${tsxLoader}" "${bin}" read counter-1 --json --db "${path}" 2>"${errFile}" | head -n 1; echo "exit=\${PIPESTATUS[0]}"`;
      const stdout = await new Promise<string>((resolve, reject) =>
        execFile('bash', ['-c', script], { timeout: 60_000 }, (error, out) => (error ? reject(error) : resolve(out))),
      );
      const [first, status] = stdout.trimEnd().split('\n');
      expect(JSON.parse(first!)).toMatchObject({ streamId: 'counter-1', version: 1 });
      expect(status).toBe('exit=0');
      expect(readFileSync(errFile, 'utf8')).toBe('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
