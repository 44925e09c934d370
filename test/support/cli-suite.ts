import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnyEvent, EventStore, ProjectionRunner, ProjectionRunnerSettings, RecordedEvent } from '../../src/index.js';
import { poison } from '../fixtures/cli-app.js';
import { LiveCli, runCli, type CliResult } from './cli-process.js';

/** One fresh store (file or schema) plus what the shared CLI tests need around it. */
export interface CliStoreCase {
  /** Arguments that select this store (`--db …`, `--schema …`). */
  readonly args: readonly string[];
  /** The same store, opened in the test process, for seeding and checking. */
  readonly store: EventStore;
  /** A directory holding `eventfold.config.mjs` for this store (its `store` setting included). */
  readonly dir: string;
  /** A runner of the configured `user-emails` projection, in the test process. */
  startRunner(settings?: ProjectionRunnerSettings): Promise<ProjectionRunner<AnyEvent, unknown>>;
  /** The `user-emails` read model: stream id → e-mail. */
  readModel(): Promise<Record<string, string>>;
}

export interface CliStoreFactory {
  readonly kind: 'sqlite' | 'postgres' | 'nats';
  /** Names the suite when the kind alone does not (e.g. NATS with checkpoints in a SQLite file). */
  readonly title?: string;
  create(tag: string): Promise<CliStoreCase>;
  cleanup(): Promise<void>;
}

/** Stored text meant to hijack a terminal: CSI clear-screen, OSC 52 clipboard write, C1 CSI, RTL override. */
export const HOSTILE_TEXT = 'pwn\u001b[2J\u001b]52;c;ZXZpbA==\u0007\u009b31m\u202egnp.exe\u0085end';
// Stream ids are refused with control or bidi characters at write time (see the raw SQLite test for
// ids written by another tool); what remains hostile in one is shell and markup syntax. Event
// types, data and metadata carry the control sequences.
export const HOSTILE_STREAM = "user-evil;[2J<b>'$(x)";

/** Every ESC in `text` starts one of our own SGR colour codes, and no C1 or bidi control is raw. */
export function expectTerminalSafe(text: string): void {
  const withoutOurColours = text.replace(/\u001b\[\d+m/g, '');
  expect(withoutOurColours).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/);
}

function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

function expectOneLineError(result: CliResult, code: number, pattern: RegExp): void {
  expect(result.code, result.stderr).toBe(code);
  const lines = result.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^eventfold: error: /);
  expect(lines[0]).toMatch(pattern);
}

async function seedUsers(store: EventStore): Promise<RecordedEvent[]> {
  const all: RecordedEvent[] = [];
  for (const [id, name] of [
    ['user-1', 'Ada'],
    ['user-2', 'Grace'],
    ['user-3', 'Edsger'],
  ] as const) {
    const result = await store.append(id, [{ type: 'UserRegistered', data: { name, email: `${name.toLowerCase()}@example.com` } }], {
      expectedVersion: 'no-stream',
    });
    all.push(...result.events);
  }
  all.push(...(await store.append('order-1', [{ type: 'OrderPlaced', data: { total: 10 } }], { expectedVersion: 'any' })).events);
  all.push(
    ...(
      await store.append(
        'user-1',
        [
          { type: 'EmailChanged', data: { email: 'ada@lovelace.org' }, metadata: { correlationId: 'c-1' } },
          { type: 'UserRenamed', data: { name: 'Ada L.' } },
        ],
        { expectedVersion: 1 },
      )
    ).events,
  );
  all.push(...(await store.append('order-2', [{ type: 'OrderPlaced', data: { total: 20 } }], { expectedVersion: 'any' })).events);
  return all;
}

/** The CLI's behaviour every store must show, run against a real store by spawning `eventfold`. */
export function describeCliSuite(factory: CliStoreFactory): void {
  // At file level: the file's other tests may still use the factory's temp directory.
  afterAll(() => factory.cleanup());
  describe(`eventfold CLI on ${factory.title ?? factory.kind}`, () => {
    describe('with seeded streams', () => {
      let c: CliStoreCase;
      let seeded: RecordedEvent[];
      beforeAll(async () => {
        c = await factory.create('seeded');
        seeded = await seedUsers(c.store);
      });

      it('lists streams with version, last position and last write, filtered by prefix and paged', async () => {
        const all = await runCli(['streams', '--json', ...c.args]);
        expect(all.code, all.stderr).toBe(0);
        const rows = jsonLines(all.stdout);
        expect(rows.map((r) => r['streamId'])).toEqual(['order-1', 'order-2', 'user-1', 'user-2', 'user-3']);
        const user1 = rows.find((r) => r['streamId'] === 'user-1')!;
        const lastOfUser1 = seeded.filter((e) => e.streamId === 'user-1').at(-1)!;
        expect(user1['version']).toBe(3);
        expect(user1['lastPosition']).toBe(lastOfUser1.position);
        expect(user1['lastWrittenAt']).toBe(lastOfUser1.recordedAt.toISOString());

        const users = await runCli(['streams', 'user-', '--json', ...c.args]);
        expect(jsonLines(users.stdout).map((r) => r['streamId'])).toEqual(['user-1', 'user-2', 'user-3']);
        const page1 = await runCli(['streams', '--prefix', 'user-', '--limit', '2', '--json', ...c.args]);
        expect(jsonLines(page1.stdout).map((r) => r['streamId'])).toEqual(['user-1', 'user-2']);
        const page2 = await runCli(['streams', '--prefix', 'user-', '--after', 'user-2', '--json', ...c.args]);
        expect(jsonLines(page2.stdout).map((r) => r['streamId'])).toEqual(['user-3']);

        const human = await runCli(['streams', '-p', 'order', ...c.args]);
        expect(human.code).toBe(0);
        expect(human.stdout).toMatch(/^STREAM\s+VERSION\s+POSITION\s+LAST WRITE/);
        expect(human.stdout).toContain('order-1');
        expect(human.stdout).not.toContain('user-1');
      });

      it('reads a stream as JSON lines, by version range and backwards', async () => {
        const result = await runCli(['read', 'user-1', '--json', ...c.args]);
        expect(result.code, result.stderr).toBe(0);
        const events = jsonLines(result.stdout);
        const expected = seeded.filter((e) => e.streamId === 'user-1');
        expect(events).toEqual(
          expected.map((e) => ({
            streamId: e.streamId,
            version: e.version,
            position: e.position,
            type: e.type,
            eventId: e.eventId,
            recordedAt: e.recordedAt.toISOString(),
            data: e.data,
            metadata: e.metadata,
          })),
        );
        const range = await runCli(['read', 'user-1', '--from', '2', '--to', '3', '--json', ...c.args]);
        expect(jsonLines(range.stdout).map((e) => e['version'])).toEqual([2, 3]);
        const back = await runCli(['read', 'user-1', '--backwards', '--limit', '2', '--json', ...c.args]);
        expect(jsonLines(back.stdout).map((e) => e['version'])).toEqual([3, 2]);
      });

      it('reads a stream for people: types, versions, positions and data', async () => {
        const result = await runCli(['read', 'user-1', ...c.args]);
        expect(result.code).toBe(0);
        expect(result.stdout).toMatch(/^v1 {2}UserRegistered {2}#\d+ {2}\d{4}-/);
        expect(result.stdout).toContain('"email": "ada@lovelace.org"');
        expect(result.stdout).toContain('metadata {"correlationId":"c-1"}');
        expect(result.stdout).not.toContain('\u001b');
      });

      it('exits 3 with one line when the stream does not exist, and 2 on bad arguments', async () => {
        expectOneLineError(await runCli(['read', 'user-404', ...c.args]), 3, /user-404.*does not exist/);
        expectOneLineError(await runCli(['read', 'user-1', '--from', 'abc', ...c.args]), 2, /--from must be an integer/);
        expectOneLineError(await runCli(['read', 'user-1', '--from', '3', '--to', '1', ...c.args]), 2, /must not be above/);
        expectOneLineError(await runCli(['streams', '--frobnicate', ...c.args]), 2, /Unknown option '--frobnicate'/);
      });

      it('tails the global log live, filtered by category and type, and stops at --max', async () => {
        const head = await c.store.headPosition();
        const tail = LiveCli.start(['tail', '--json', '--category', 'user', '--type', 'EmailChanged', '--type', 'UserRenamed', '--from', String(head + 1), '--max', '3', '--poll-ms', '50', ...c.args]);
        try {
          await c.store.append('order-3', [{ type: 'OrderPlaced', data: { total: 1 } }], { expectedVersion: 'any' });
          await c.store.append('user-2', [{ type: 'EmailChanged', data: { email: 'g@h.org' } }], { expectedVersion: 'any' });
          await c.store.append('customer-2', [{ type: 'EmailChanged', data: { email: 'not-a-user' } }], { expectedVersion: 'any' });
          await tail.waitFor((out) => out.includes('g@h.org'));
          await c.store.append('user-3', [{ type: 'UserRenamed', data: { name: 'E.W.D.' } }, { type: 'Noted', data: {} }], { expectedVersion: 'any' });
          await c.store.append('user-2', [{ type: 'UserRenamed', data: { name: 'G.H.' } }], { expectedVersion: 'any' });
          const result = await tail.exited;
          expect(result.code, result.stderr).toBe(0);
          const lines = jsonLines(result.stdout);
          expect(lines.map((e) => [e['streamId'], e['type']])).toEqual([
            ['user-2', 'EmailChanged'],
            ['user-3', 'UserRenamed'],
            ['user-2', 'UserRenamed'],
          ]);
        } finally {
          tail.kill();
        }
      });

      it('stops tailing on Ctrl-C (SIGINT) with exit code 0', async () => {
        const head = await c.store.headPosition();
        const tail = LiveCli.start(['tail', '--from', String(head + 1), '--poll-ms', '50', ...c.args]);
        try {
          await c.store.append('user-9', [{ type: 'UserRegistered', data: { name: 'Zed', email: 'z@z' } }], { expectedVersion: 'any' });
          await tail.waitFor((out) => out.includes('user-9@1'));
          expect(tail.stdout).toMatch(/#\d+ {2}\S+ {2}user-9@1 {2}UserRegistered {2}\{"name":"Zed"/);
          tail.child.kill('SIGINT');
          expect((await tail.exited).code).toBe(0);
        } finally {
          tail.kill();
        }
      });

      it('takes the store from the configuration file when --db is not given', async () => {
        const result = await runCli(['streams', '--json'], { cwd: c.dir });
        expect(result.code, result.stderr).toBe(0);
        expect(jsonLines(result.stdout).map((r) => r['streamId'])).toContain('user-1');
        const explicit = await runCli(['streams', '--json', '--config', join(c.dir, 'eventfold.config.mjs')]);
        expect(jsonLines(explicit.stdout).map((r) => r['streamId'])).toContain('user-1');
      });
    });

    describe('hostile stored text', () => {
      let c: CliStoreCase;
      beforeAll(async () => {
        c = await factory.create('hostile');
        await c.store.append(
          HOSTILE_STREAM,
          [{ type: 'Hostile\u009b2J', data: { text: HOSTILE_TEXT, [HOSTILE_TEXT]: 1 }, metadata: { note: HOSTILE_TEXT } }],
          { expectedVersion: 'no-stream' },
        );
      });

      it('never lets event data, types or stream ids reach the terminal as control sequences', async () => {
        for (const env of [{}, { FORCE_COLOR: '1' }]) {
          const streams = await runCli(['streams', ...c.args], { env });
          const read = await runCli(['read', HOSTILE_STREAM, ...c.args], { env });
          const tail = await runCli(['tail', '--from', '0', '--max', '1', ...c.args], { env });
          for (const result of [streams, read, tail]) {
            expect(result.code, result.stderr).toBe(0);
            expectTerminalSafe(result.stdout);
            expectTerminalSafe(result.stderr);
          }
          expect(read.stdout).toContain('pwn\\u001b[2J\\u001b]52;c;ZXZpbA==\\u0007\\u009b31m\\u202egnp.exe\\u0085end');
          expect(streams.stdout).toContain(HOSTILE_STREAM);
        }
        const missing = await runCli(['read', `${HOSTILE_STREAM}x`, ...c.args]);
        expect(missing.code).toBe(3);
        expectTerminalSafe(missing.stderr);
      });

      it('keeps --json output valid JSON that reads back exactly, with no raw control characters', async () => {
        const result = await runCli(['read', HOSTILE_STREAM, '--json', ...c.args]);
        expectTerminalSafe(result.stdout);
        const [event] = jsonLines(result.stdout);
        expect(event!['streamId']).toBe(HOSTILE_STREAM);
        expect(event!['type']).toBe('Hostile\u009b2J');
        expect(event!['data']).toEqual({ text: HOSTILE_TEXT, [HOSTILE_TEXT]: 1 });
      });

      it('colours output only on a terminal or with FORCE_COLOR, never with NO_COLOR or --no-color', async () => {
        const forced = await runCli(['read', HOSTILE_STREAM, ...c.args], { env: { FORCE_COLOR: '1' } });
        expect(forced.stdout).toMatch(/\u001b\[\d+m/);
        for (const [args, env] of [
          [[], {}],
          [[], { FORCE_COLOR: '1', NO_COLOR: '1' }],
          [['--no-color'], { FORCE_COLOR: '1' }],
        ] as const) {
          const result = await runCli(['read', HOSTILE_STREAM, ...args, ...c.args], { env });
          expect(result.code).toBe(0);
          expect(result.stdout).not.toContain('\u001b');
        }
      });
    });

    describe('projections', () => {
      let c: CliStoreCase;
      beforeAll(async () => {
        c = await factory.create('proj');
        await seedUsers(c.store);
      });

      const status = async (): Promise<Record<string, unknown>> => {
        const result = await runCli(['projections', 'status', '--json'], { cwd: c.dir });
        expect(result.code, result.stderr).toBe(0);
        const rows = jsonLines(result.stdout);
        expect(rows).toHaveLength(1);
        return rows[0]!;
      };

      it('shows a configured projection that never ran, rebuilds it with progress, then shows it caught up', async () => {
        const head = await c.store.headPosition();
        expect(await status()).toMatchObject({ projection: 'user-emails', state: 'never-ran', position: 0, lag: head, inConfig: true });

        const rebuilt = await runCli(['projections', 'rebuild', 'user-emails', '--json', '--batch-size', '2'], { cwd: c.dir });
        expect(rebuilt.code, rebuilt.stderr).toBe(0);
        const progress = jsonLines(rebuilt.stdout);
        expect(progress.at(-1)).toMatchObject({ projection: 'user-emails', done: true, ratio: 1, position: head, headPosition: head });
        expect(await c.readModel()).toEqual({
          'user-1': 'ada@lovelace.org',
          'user-2': 'grace@example.com',
          'user-3': 'edsger@example.com',
        });
        expect(await status()).toMatchObject({ state: 'stopped', position: head, lag: 0, version: 1, needsRebuild: false });

        const human = await runCli(['projections', 'rebuild', 'user-emails'], { cwd: c.dir });
        expect(human.code, human.stderr).toBe(0);
        expect(human.stderr).toMatch(/user-emails: 100% \(\d+\/\d+ positions, \d+ ev\/s, done\)/);
        expect(human.stdout).toContain(`Rebuilt user-emails up to position ${head}`);
      });

      it('resets a projection: read model emptied, checkpoint at 0, lag back to the head', async () => {
        const result = await runCli(['projections', 'reset', 'user-emails'], { cwd: c.dir });
        expect(result.code, result.stderr).toBe(0);
        expect(await c.readModel()).toEqual({});
        expect(await status()).toMatchObject({ position: 0, lag: await c.store.headPosition(), state: 'stopped' });
      });

      it('refuses rebuild and reset with exit 4 while a runner holds the projection, and shows it running', async () => {
        const runner = await c.startRunner();
        try {
          await runner.waitUntilCaughtUp({ timeoutMs: 30_000 });
          expect(await status()).toMatchObject({ state: 'running', lag: 0 });
          expectOneLineError(await runCli(['projections', 'rebuild', 'user-emails'], { cwd: c.dir }), 4, /user-emails/);
          expectOneLineError(await runCli(['projections', 'reset', 'user-emails'], { cwd: c.dir }), 4, /user-emails/);
          expect(await c.readModel()).toHaveProperty('user-1', 'ada@lovelace.org');
        } finally {
          await runner.stop();
        }
        expect(await status()).toMatchObject({ state: 'stopped' });
      });

      it('names what is missing when a projection is not configured', async () => {
        expectOneLineError(await runCli(['projections', 'rebuild', 'nope'], { cwd: c.dir }), 3, /'nope'.*not in .*eventfold\.config\.mjs/);
        expectOneLineError(await runCli(['projections', 'frob'], { cwd: c.dir }), 2, /Unknown projections command 'frob'/);
        const bare = await runCli(['projections', 'rebuild', 'user-emails', ...c.args]);
        expect(bare.code).toBe(3);
      });
    });

    describe('parked events (dead letters)', () => {
      let c: CliStoreCase;
      beforeAll(async () => {
        c = await factory.create('parked');
        await seedUsers(c.store);
        poison.healed = false;
        await c.store.append('user-2', [{ type: 'EmailChanged', data: { email: 'poison@example.com' } }], { expectedVersion: 'any' });
      });
      afterAll(() => {
        poison.healed = false;
      });

      const status = async (): Promise<Record<string, unknown>> => {
        const result = await runCli(['projections', 'status', '--json'], { cwd: c.dir });
        expect(result.code, result.stderr).toBe(0);
        return jsonLines(result.stdout)[0]!;
      };

      it('shows parked events and the last error, and retries them through the running runner', async () => {
        expect(await runCli(['projections', 'retry-parked', 'user-emails', ...c.args])).toMatchObject({ code: 0, stdout: expect.stringContaining('No parked events') });
        const runner = await c.startRunner({ poisonEvents: 'park', retry: { maxAttempts: 1 }, pollIntervalMs: 50 });
        try {
          await runner.waitUntilCaughtUp({ timeoutMs: 30_000 });
          expect(await status()).toMatchObject({ state: 'running', lag: 0, parked: 1, lastError: expect.stringContaining('poisoned e-mail poison@example.com') });
          const human = await runCli(['projections', 'status'], { cwd: c.dir });
          expect(human.stdout).toMatch(/user-emails\s+running\s+\d+\s+0\s+1\s+1\s+\S+\s+poisoned e-mail/);

          // Still poisoned: the runner tries again, fails again, and the event stays parked.
          const again = await runCli(['projections', 'retry-parked', 'user-emails', '--timeout', '60'], { cwd: c.dir });
          expect(again.code, again.stderr).toBe(1);
          // Progress lines first (stderr is not a terminal), then the error as the last line.
          expect(again.stderr.trimEnd().split('\n').at(-1)).toMatch(/^eventfold: error: 1 of 1 parked event failed again .*EmailChanged in user-2.*poisoned e-mail/);
          expect(await status()).toMatchObject({ parked: 1 });

          poison.healed = true;
          const healed = await runCli(['projections', 'retry-parked', 'user-emails', '--json', '--timeout', '60'], { cwd: c.dir });
          expect(healed.code, healed.stderr).toBe(0);
          const lines = jsonLines(healed.stdout);
          expect(lines.at(-1)).toMatchObject({ projection: 'user-emails', marked: 1, applied: 1, failed: 0, waited: true });
          expect(lines.some((line) => line['finished'] === true && line['done'] === 1 && line['total'] === 1)).toBe(true);
          expect(await c.readModel()).toHaveProperty('user-2', 'poison@example.com');
          expect(await status()).toMatchObject({ parked: 0, lastError: null });
        } finally {
          await runner.stop();
        }
      });

      it('marks parked events for a later runner when none runs, and names a missing position', async () => {
        poison.healed = false;
        await c.store.append('user-3', [{ type: 'EmailChanged', data: { email: 'poison-2@example.com' } }], { expectedVersion: 'any' });
        const runner = await c.startRunner({ poisonEvents: 'park', retry: { maxAttempts: 1 }, pollIntervalMs: 50 });
        await runner.waitUntilCaughtUp({ timeoutMs: 30_000 });
        await runner.stop();
        const [row] = [await status()];
        expect(row).toMatchObject({ state: 'stopped', parked: 1 });
        expectOneLineError(await runCli(['projections', 'retry-parked', 'user-emails', '--position', '1', ...c.args]), 3, /no parked event at position 1/);
        const marked = await runCli(['projections', 'retry-parked', 'user-emails', '--json', ...c.args]);
        expect(marked.code, marked.stderr).toBe(0);
        expect(JSON.parse(marked.stdout)).toMatchObject({ marked: 1, runner: null, waited: false });
        poison.healed = true;
        const next = await c.startRunner({ poisonEvents: 'park', retry: { maxAttempts: 1 }, pollIntervalMs: 50 });
        try {
          await expect.poll(async () => (await status())['parked'], { timeout: 30_000 }).toBe(0);
          expect(await c.readModel()).toHaveProperty('user-3', 'poison-2@example.com');
        } finally {
          await next.stop();
        }
      });
    });

    it('migrate creates an empty store that lists no streams', async () => {
      const c = await factory.create('fresh');
      const migrated = await runCli(['migrate', '--json', ...c.args]);
      expect(migrated.code, migrated.stderr).toBe(0);
      expect(JSON.parse(migrated.stdout)).toMatchObject({ migrated: true, store: factory.kind });
      const again = await runCli(['migrate', ...c.args]);
      expect(again.code).toBe(0);
      expect(again.stdout).toMatch(/is migrated \(head position 0\)/);
      const status = await runCli(['projections', 'status', ...c.args]);
      expect(status.stdout).toMatch(/No projections/);
    });
  });
}

export function writeConfig(dir: string, body: string): string {
  const path = join(dir, 'eventfold.config.mjs');
  writeFileSync(path, body);
  return path;
}
