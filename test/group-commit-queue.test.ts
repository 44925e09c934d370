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
