// The crash tests of the SQL stores (postgres-crash, sqlite-crash): a writer fixture appends marked
// batches in a loop and is SIGKILLed; afterwards the log must hold only whole appends, every
// acknowledged one among them, with contiguous versions. The writers print `appending` once, then
// `begin <tag> <batch>` inside an append and `done <tag> <batch> <largest group>` once it returned.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import type { EventStore, RecordedEvent } from '../../src/index.js';

/** The data of every event a crash writer appends: event `index` of `of` in batch `batch`. */
export interface Marker {
  writer: string;
  batch: number;
  of: number;
  index: number;
}

export interface KilledWriter {
  /** The kill landed inside an append (it had begun and not returned). */
  readonly midAppend: boolean;
  /** `<writer>/<batch>` of every append whose promise resolved before the kill. */
  readonly acknowledged: string[];
  /** The most appends that shared one group commit. */
  readonly largestGroup: number;
}

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Starts the writer fixture with `args`, waits until it is appending, lets it run `ms` more, then
 * SIGKILLs it — at once, or (`inHook`) as soon as an append reports that it began.
 */
export async function runAndKill(fixture: string, args: readonly string[], ms: number, options: { inHook?: boolean } = {}): Promise<KilledWriter> {
  const script = fileURLToPath(new URL(`../fixtures/${fixture}`, import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', () => {
      if (stdout.includes('appending')) resolve();
    });
    void exited.then((how) => reject(new Error(`writer exited early (${String(how)}): ${stderr}`)));
  });
  await new Promise((resolve) => setTimeout(resolve, ms));
  if (options.inHook === true) {
    const seen = stdout.length;
    await new Promise<void>((resolve) => {
      const onData = (): void => {
        if (!stdout.slice(seen).includes('begin ')) return;
        child.stdout.off('data', onData);
        resolve();
      };
      child.stdout.on('data', onData);
    });
  }
  child.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');
  const lines = stdout.trim().split('\n');
  // A `done` line is printed only after the append's promise resolved: it was acknowledged.
  const done = lines.filter((line) => line.startsWith('done ')).map((line) => line.split(' '));
  return {
    midAppend: lines[lines.length - 1]!.startsWith('begin '),
    acknowledged: done.map(([, tag, batch]) => `${tag}/${batch}`),
    largestGroup: Math.max(0, ...done.map(([, , , largest]) => Number(largest))),
  };
}

/**
 * What any store must show after the kills: positions grow and end at the head, every batch is
 * whole (all `of` events, each index once), every acknowledged append is there, and each stream's
 * versions are 1..n with `readStream` and `streamVersion` agreeing with the log. Returns the log
 * and its events by batch (`<writer>/<batch>`).
 */
export async function expectWholeAppends(
  store: EventStore,
  acknowledged: readonly string[],
): Promise<{ log: RecordedEvent[]; batches: Map<string, RecordedEvent[]> }> {
  const log = await store.readAll().toArray();
  for (let i = 1; i < log.length; i++) expect(log[i]!.position).toBeGreaterThan(log[i - 1]!.position);
  expect(await store.headPosition()).toBe(log.length === 0 ? 0 : log[log.length - 1]!.position);

  const batches = new Map<string, RecordedEvent[]>();
  for (const event of log) {
    const m = event.data as Marker;
    const key = `${m.writer}/${m.batch}`;
    batches.set(key, [...(batches.get(key) ?? []), event]);
  }
  for (const [key, events] of batches) {
    const of = (events[0]!.data as Marker).of;
    const indexes = events.map((e) => (e.data as Marker).index).sort((a, b) => a - b);
    expect(indexes, `batch ${key}`).toEqual(Array.from({ length: of }, (_, i) => i));
  }
  expect(acknowledged.filter((key) => !batches.has(key)), 'acknowledged appends lost').toEqual([]);

  const byStream = new Map<string, RecordedEvent[]>();
  for (const event of log) byStream.set(event.streamId, [...(byStream.get(event.streamId) ?? []), event]);
  for (const [streamId, events] of byStream) {
    const stream = await store.readStream(streamId).toArray();
    expect(stream.map((e) => e.version)).toEqual(Array.from({ length: stream.length }, (_, i) => i + 1));
    expect(stream.map((e) => [e.position, e.eventId])).toEqual(events.map((e) => [e.position, e.eventId]));
    expect(await store.streamVersion(streamId)).toBe(stream.length);
  }
  return { log, batches };
}
