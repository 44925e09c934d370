import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GroupCommitter, resolveGroupCommit, type GroupMember, type GroupOutcome } from '../src/store/group-commit.js';

/**
 * The queue behind group commit on an asynchronous driver (PostgreSQL), with the commit itself
 * played by a function that answers after a timer, as a database round trip would.
 */
interface Member extends GroupMember {
  readonly caller: number;
  readonly seq: number;
}

function member(caller: number, seq: number): Member {
  return { caller, seq, appends: [{ streamId: `s-${caller}-${seq}`, expectedVersion: 'any', events: [] }] };
}

function committer(maxInFlight: number, delay: () => number = () => 1) {
  const groups: Member[][] = [];
  const queue = new GroupCommitter<Member, string>(resolveGroupCommit(true)!, 'now', maxInFlight, async (group) => {
    groups.push([...group]);
    await new Promise((resolve) => setTimeout(resolve, delay()));
    return group.map((m): GroupOutcome<string> => ({ ok: true, value: `${m.caller}:${m.seq}` }));
  });
  return { queue, groups };
}

async function callers(queue: GroupCommitter<Member, string>, count: number, appends: number): Promise<string[][]> {
  return Promise.all(
    Array.from({ length: count }, async (_, caller) => {
      const answers: string[] = [];
      for (let seq = 0; seq < appends; seq++) answers.push(await queue.submit(member(caller, seq)));
      return answers;
    }),
  );
}

describe('group commit queue (asynchronous driver)', () => {
  it('callers answered by one commit that append again at once go together in the next group', async () => {
    const { queue, groups } = committer(1);
    await callers(queue, 8, 5);
    // 1 (the first caller, at once), 7 (the rest, while it ran), then all 8 together each time.
    // Without waiting for the answered callers, the groups would alternate 1, 7, 1, 7, ...
    expect(groups.map((g) => g.length)).toEqual([1, 7, 8, 8, 8, 8]);
    expect(queue.stats).toEqual({ groups: 6, appends: 40, largestGroup: 8 });
  });

  it('an append without concurrency is committed at once, without waiting for a turn of the event loop', async () => {
    const { queue, groups } = committer(4);
    for (let seq = 0; seq < 5; seq++) {
      const answer = queue.submit(member(0, seq));
      // The commit started synchronously inside submit().
      expect(groups).toHaveLength(seq + 1);
      await expect(answer).resolves.toBe(`0:${seq}`);
    }
  });

  it('property: every append is committed exactly once, in its caller order, and answered with its own result', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 20 }),
        async (count, appends, inFlight, delays) => {
          let d = 0;
          const { queue, groups } = committer(inFlight, () => delays[d++ % delays.length]!);
          const answers = await callers(queue, count, appends);
          expect(answers).toEqual(Array.from({ length: count }, (_, c) => Array.from({ length: appends }, (_, s) => `${c}:${s}`)));
          const committed = groups.flat();
          expect(committed).toHaveLength(count * appends);
          for (let c = 0; c < count; c++) {
            expect(committed.filter((m) => m.caller === c).map((m) => m.seq)).toEqual(Array.from({ length: appends }, (_, s) => s));
          }
          await queue.drain();
          expect(queue.pending).toBe(0);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('group commit queue (synchronous driver)', () => {
  function syncCommitter() {
    const groups: Member[][] = [];
    const queue = new GroupCommitter<Member, string>(resolveGroupCommit(true)!, 'soon', 1, (group) => {
      groups.push([...group]);
      return group.map((m): GroupOutcome<string> => ({ ok: true, value: `${m.caller}:${m.seq}` }));
    });
    return { queue, groups };
  }

  it('an append without concurrency is committed inside submit(), with no hop', async () => {
    const { queue, groups } = syncCommitter();
    for (let seq = 0; seq < 5; seq++) {
      const answer = queue.submit(member(0, seq));
      expect(groups).toHaveLength(seq + 1);
      await expect(answer).resolves.toBe(`0:${seq}`);
    }
    expect(queue.stats).toEqual({ groups: 5, appends: 5, largestGroup: 1 });
  });

  it('a second append in the same run of microtasks waits to be gathered, and so does everyone after a larger group', async () => {
    const { queue, groups } = syncCommitter();
    const answers = await callers(queue, 8, 5);
    expect(answers[3]).toEqual(['3:0', '3:1', '3:2', '3:3', '3:4']);
    // The first caller at once; the other seven are gathered behind it, and the first caller,
    // answered already, joins them: eight each time, until it runs out of appends first.
    expect(groups.map((g) => g.length)).toEqual([1, 8, 8, 8, 8, 7]);
    // A group of one again ends the gathering: the next lone append goes at once.
    await queue.submit(member(9, 0));
    await queue.submit(member(9, 1));
    const before = groups.length;
    void queue.submit(member(9, 2));
    expect(groups).toHaveLength(before + 1);
  });
});

describe('group commit queue under failures, shared streams and drains', () => {
  type Gap = 'none' | 'micro' | 'turn' | 'timer';
  type Fate = 'ok' | 'fail-member' | 'throw-async' | 'throw-sync';
  const sleepFor = (gap: Gap): Promise<void> =>
    gap === 'none'
      ? Promise.resolve()
      : gap === 'micro'
        ? new Promise((resolve) => queueMicrotask(() => resolve()))
        : gap === 'turn'
          ? new Promise((resolve) => setImmediate(resolve))
          : new Promise((resolve) => setTimeout(resolve, 1));

  it('property: every append settles (never stalls), with its own answer; a stream is in one commit at a time, in submission order; group limits kept', async () => {
    const step = fc.record({
      stream: fc.integer({ min: 0, max: 3 }),
      events: fc.integer({ min: 0, max: 3 }),
      gap: fc.constantFrom<Gap>('none', 'micro', 'turn', 'timer'),
      drain: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          start: fc.constantFrom<'now' | 'soon'>('now', 'soon'),
          inFlight: fc.integer({ min: 1, max: 3 }),
          maxAppends: fc.integer({ min: 1, max: 5 }),
          maxEvents: fc.integer({ min: 1, max: 4 }),
          maxDelayMs: fc.constantFrom(0, 0, 1, 2),
          scripts: fc.array(fc.array(step, { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 6 }),
          fates: fc.array(fc.constantFrom<Fate>('ok', 'ok', 'fail-member', 'throw-async', 'throw-sync'), { minLength: 1, maxLength: 10 }),
          latencies: fc.array(fc.constantFrom(0, 1, 2), { minLength: 1, maxLength: 5 }),
        }),
        async ({ start, inFlight, maxAppends, maxEvents, maxDelayMs, scripts, fates, latencies }) => {
          const options = resolveGroupCommit({ maxAppends, maxEvents, maxDelayMs })!;
          const started: Member[][] = [];
          let running = 0;
          let mostRunning = 0;
          let drained = false;
          let g = 0;
          const submitted: Member[] = [];
          const inCommit = new Set<string>();
          let overlaps = 0;
          const queue = new GroupCommitter<Member, string>(options, start, inFlight, (group) => {
            const n = g++;
            started.push([...group]);
            // A stream is in one commit at a time, so its appends commit in submission order.
            for (const m of group) {
              const id = m.appends[0]!.streamId;
              if (inCommit.has(id)) overlaps++;
              inCommit.add(id);
            }
            const done = () => {
              for (const m of group) inCommit.delete(m.appends[0]!.streamId);
            };
            const fate = fates[n % fates.length]!;
            if (fate === 'throw-sync') {
              done();
              throw new Error(`group ${n}`);
            }
            const outcomes = group.map((m, i): GroupOutcome<string> =>
              fate === 'fail-member' && i % 2 === 0 ? { ok: false, error: new Error(`member ${m.caller}:${m.seq}`) } : { ok: true, value: `${m.caller}:${m.seq}` },
            );
            running++;
            mostRunning = Math.max(mostRunning, running);
            const latency = latencies[n % latencies.length]!;
            return (async () => {
              if (latency > 0) await new Promise((resolve) => setTimeout(resolve, latency));
              running--;
              done();
              if (fate === 'throw-async') throw new Error(`group ${n}`);
              return outcomes;
            })();
          });
          const answers = await Promise.race([
            Promise.all(
              scripts.map(async (script, caller) => {
                const mine: string[] = [];
                for (const [seq, s] of script.entries()) {
                  await sleepFor(s.gap);
                  const m: Member = {
                    caller,
                    seq,
                    appends: [{ streamId: `s-${s.stream}`, expectedVersion: 'any', events: Array.from({ length: s.events }, () => ({ type: 'E', data: {} })) as never }],
                  };
                  submitted.push(m);
                  const answer = queue.submit(m).then(
                    (value) => value,
                    (error: Error) => `failed ${error.message}`,
                  );
                  if (s.drain) {
                    drained = true;
                    void queue.drain();
                  }
                  mine.push(await answer);
                }
                return mine;
              }),
            ),
            new Promise<'stalled'>((resolve) => setTimeout(() => resolve('stalled'), 3_000)),
          ]);
          expect(answers).not.toBe('stalled');
          const all = started.flat();
          // Each append committed once (a failed group is not retried by the queue).
          expect(all).toHaveLength(scripts.reduce((n, s) => n + s.length, 0));
          for (const [caller, mine] of (answers as string[][]).entries()) {
            for (const [seq, answer] of mine.entries()) expect(answer).toMatch(new RegExp(`^(${caller}:${seq}|failed (member ${caller}:${seq}|group \\d+))$`));
          }
          for (const group of started) {
            expect(group.length).toBeLessThanOrEqual(maxAppends);
            const streams = group.map((m) => m.appends[0]!.streamId);
            expect(new Set(streams).size).toBe(streams.length);
            const events = group.reduce((n, m) => n + m.appends[0]!.events.length, 0);
            if (group.length > 1) expect(events).toBeLessThanOrEqual(maxEvents);
          }
          // Per stream, commits start in submission order.
          for (let stream = 0; stream < 4; stream++) {
            const on = (m: Member) => m.appends[0]!.streamId === `s-${stream}`;
            expect(all.filter(on)).toEqual(submitted.filter(on));
          }
          if (!drained) expect(mostRunning).toBeLessThanOrEqual(inFlight);
          expect(overlaps).toBe(0);
          await queue.drain();
          expect(queue.pending).toBe(0);
        },
      ),
      { numRuns: 150 },
    );
  }, 120_000);
});
