import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteEventStore } from '../src/sqlite/index.js';
import { sqliteTempDir } from './fixtures/sqlite-temp.js';

const run = promisify(execFile);
const temp = sqliteTempDir('eventfold-sqlite-mp-');
afterAll(() => temp.cleanup());

const contender = fileURLToPath(new URL('./fixtures/sqlite-contender.ts', import.meta.url));
const repoRoot = fileURLToPath(new URL('..', import.meta.url));

interface Report {
  writer: string;
  wins: number;
  conflicts: Array<{ expected: number; actual: number }>;
  reserved: number[];
}

describe('SqliteEventStore across processes', () => {
  it('writers in separate processes on one file: version checks hold, one owner per reserved name', async () => {
    const file = temp.file('shared.db');
    // Create the schema first so the race is about appends, not migrations.
    await new SqliteEventStore({ path: file }).close();
    const writers = 4;
    const attempts = 60;
    const names = 15;
    const barrier = temp.file('barrier');
    mkdirSync(barrier);
    const outputs = await Promise.all(
      Array.from({ length: writers }, (_, w) =>
        run(process.execPath, ['--import', 'tsx', contender, file, `w${w}`, String(attempts), String(names), barrier, String(writers)], {
          cwd: repoRoot,
        }),
      ),
    );
    const reports = outputs.map((o) => JSON.parse(o.stdout) as Report);

    const store = new SqliteEventStore({ path: file });
    try {
      const contended = await store.readStream('contended').toArray();
      const wins = reports.reduce((sum, r) => sum + r.wins, 0);
      // Every success is in the stream exactly once, in a gapless version sequence.
      expect(contended).toHaveLength(wins);
      expect(contended.map((e) => e.version)).toEqual(Array.from({ length: wins }, (_, i) => i + 1));
      for (const report of reports) {
        expect(contended.filter((e) => (e.data as { writer: string }).writer === report.writer)).toHaveLength(report.wins);
        expect(report.wins + report.conflicts.length).toBe(attempts);
        // A loser always lost to a newer version than the one it read.
        for (const conflict of report.conflicts) expect(conflict.actual).toBeGreaterThan(conflict.expected);
      }
      // The processes did overlap: someone lost at least once.
      expect(reports.some((r) => r.conflicts.length > 0)).toBe(true);

      // Each name has exactly one owner, and its user stream was written in the same step.
      const owners = new Map<number, string[]>();
      for (const report of reports) for (const name of report.reserved) owners.set(name, [...(owners.get(name) ?? []), report.writer]);
      for (let name = 0; name < names; name++) {
        expect(owners.get(name), `name ${name}`).toHaveLength(1);
        const owner = owners.get(name)![0]!;
        const [reservation] = await store.readStream(`username-${name}`).toArray();
        expect(reservation!.data).toEqual({ writer: owner });
        expect(await store.streamVersion(`username-${name}`)).toBe(1);
        for (let w = 0; w < writers; w++) {
          expect(await store.streamVersion(`user-w${w}-${name}`)).toBe(`w${w}` === owner ? 1 : 0);
        }
      }
      const log = await store.readAll().toArray();
      expect(log.map((e) => e.position)).toEqual(Array.from({ length: log.length }, (_, i) => i + 1));
    } finally {
      await store.close();
    }
  }, 120_000);
});
