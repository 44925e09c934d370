import type { ProjectionProgress } from '../projections/progress.js';
import { formatDuration, type CliIO } from './command.js';
import { safeJsonStringify, sanitizeText } from './sanitize.js';
import type { Style } from './style.js';

/**
 * Shows a rebuild's progress: on a terminal a bar redrawn in place on stderr; otherwise (pipes,
 * CI logs) a plain line at most every `lineIntervalMs` and always the last one; with `json`, one
 * JSON object per report on stdout.
 */
export class ProgressDisplay {
  private lastLineAt = 0;
  private drewBar = false;

  constructor(
    private readonly io: CliIO,
    private readonly style: Style,
    private readonly json: boolean,
    private readonly lineIntervalMs = 1_000,
  ) {}

  report(progress: ProjectionProgress): void {
    if (this.json) {
      this.io.stdout.write(
        `${safeJsonStringify({
          projection: progress.projection,
          phase: progress.phase,
          processed: progress.processed,
          position: progress.position,
          headPosition: progress.headPosition,
          ratio: progress.ratio,
          eventsPerSecond: Math.round(progress.eventsPerSecond),
          estimatedMsLeft: progress.estimatedMsLeft === undefined ? null : Math.round(progress.estimatedMsLeft),
          done: progress.done,
        })}\n`,
      );
      return;
    }
    const percent = `${Math.floor(progress.ratio * 100)}%`.padStart(4);
    const eta = progress.done ? 'done' : progress.estimatedMsLeft === undefined ? 'ETA ?' : `ETA ${formatDuration(progress.estimatedMsLeft)}`;
    const counts = `${progress.position}/${progress.headPosition}`;
    const rate = `${Math.round(progress.eventsPerSecond)} ev/s`;
    const name = sanitizeText(progress.projection);
    if (this.io.stderr.isTTY === true) {
      const width = Math.max(10, Math.min(40, (this.io.stderr.columns ?? 80) - 60));
      const filled = Math.round(progress.ratio * width);
      const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
      this.io.stderr.write(`\r\u001b[2K${name} ${this.style.green(bar)} ${percent} ${counts} ${rate} ${eta}`);
      this.drewBar = true;
      if (progress.done) {
        this.io.stderr.write('\n');
        this.drewBar = false;
      }
      return;
    }
    const now = Date.now();
    if (!progress.done && now - this.lastLineAt < this.lineIntervalMs) return;
    this.lastLineAt = now;
    this.io.stderr.write(`${name}: ${percent} (${counts} positions, ${rate}, ${eta})\n`);
  }

  /** Ends a bar left mid-line (on failure or Ctrl-C). */
  close(): void {
    if (this.drewBar) this.io.stderr.write('\n');
    this.drewBar = false;
  }
}
