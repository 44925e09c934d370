import type { DeadLetter } from '../../projections/dead-letters.js';
import { integerOption, withStore, writeLine, type Invocation } from '../command.js';
import { EXIT } from '../errors.js';
import { ProgressDisplay } from '../progress.js';
import { allDeadLetters, requireProjections } from '../projection-status.js';
import { safeJsonStringify, sanitizeStreamId } from '../sanitize.js';

function sleep(ms: number, interrupted: Promise<void>): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(true), ms);
    void interrupted.then(() => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

/**
 * Marks a projection's parked events for another attempt (all, or `--position`). The running
 * runner re-applies them; with a runner present this waits, with a progress bar and ETA, until
 * each marked event is applied (its letter gone) or failed again (its mark cleared).
 */
export async function retryParked(invocation: Invocation, name: string): Promise<number> {
  const { values, io, style } = invocation;
  const only = integerOption(values, 'position', 1);
  const timeoutSeconds = integerOption(values, 'timeout', 1) ?? 300;
  const json = values['json'] === true;
  const say = async (message: string, data: Record<string, unknown>): Promise<void> => {
    await writeLine(io, json ? safeJsonStringify({ projection: name, ...data }) : message);
  };
  return withStore(invocation, {}, async ({ opened }) => {
    const admin = requireProjections(opened);
    const deadLetters = await admin.deadLetters();
    const parked = deadLetters === undefined ? [] : await allDeadLetters(deadLetters, name);
    const chosen = only === undefined ? parked : parked.filter((letter) => letter.position === only);
    if (only !== undefined && chosen.length === 0) {
      io.stderr.write(`eventfold: error: Projection '${style.plain(name)}' has no parked event at position ${only}.\n`);
      return EXIT.notFound;
    }
    if (chosen.length === 0 || deadLetters === undefined) {
      await say(`No parked events for ${style.cyan(name)}.`, { marked: 0 });
      return EXIT.ok;
    }
    for (const letter of chosen) await deadLetters.retry(name, letter.position);
    const runner = await admin.lockHolder(name);
    if (runner === undefined || values['no-wait'] === true) {
      const when = runner === undefined ? `No runner is running ${style.cyan(name)}: they are retried when one starts.` : 'The running runner retries them shortly.';
      await say(`Marked ${chosen.length} parked event${chosen.length === 1 ? '' : 's'} for retry. ${when}`, {
        marked: chosen.length,
        runner: runner ?? null,
        waited: false,
      });
      return EXIT.ok;
    }

    // Wait for the runner: a letter that is gone was applied; one whose mark was cleared failed again.
    const positions = new Set(chosen.map((letter) => letter.position));
    const display = new ProgressDisplay(io, style, json);
    const startedAt = Date.now();
    const deadline = startedAt + timeoutSeconds * 1000;
    let pending: DeadLetter[] = chosen;
    let failed: DeadLetter[] = [];
    try {
      for (;;) {
        const now = (await allDeadLetters(deadLetters, name)).filter((letter) => positions.has(letter.position));
        pending = now.filter((letter) => letter.retryRequested);
        failed = now.filter((letter) => !letter.retryRequested);
        const finished = pending.length === 0;
        display.reportCount(name, 'retried', chosen.length - pending.length, chosen.length, startedAt, finished);
        if (finished) break;
        if (Date.now() > deadline) {
          io.stderr.write(
            `eventfold: error: ${pending.length} parked event${pending.length === 1 ? ' was' : 's were'} not retried within ${timeoutSeconds}s; is the runner of '${style.plain(name)}' stuck? They stay marked for retry.\n`,
          );
          return EXIT.failure;
        }
        if (!(await sleep(200, io.interrupted))) return EXIT.failure;
      }
    } finally {
      display.close();
    }
    const applied = chosen.length - failed.length;
    if (failed.length > 0) {
      const first = failed[0]!;
      io.stderr.write(
        `eventfold: error: ${failed.length} of ${chosen.length} parked event${chosen.length === 1 ? '' : 's'} failed again and stay parked; ` +
          `position ${first.position} (${style.plain(first.eventType)} in ${sanitizeStreamId(first.streamId)}): ${style.plain(first.error)}\n`,
      );
      if (json) await writeLine(io, safeJsonStringify({ projection: name, marked: chosen.length, applied, failed: failed.length, waited: true }));
      return EXIT.failure;
    }
    await say(`${style.green('✔')} Retried ${applied} parked event${applied === 1 ? '' : 's'} of ${style.cyan(name)}: all applied.`, {
      marked: chosen.length,
      applied,
      failed: 0,
      waited: true,
    });
    return EXIT.ok;
  });
}
