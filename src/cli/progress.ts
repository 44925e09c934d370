import type { ProjectionProgress } from '../projections/progress.js';
import { formatDuration, type CliIO } from './command.js';
import { safeJsonStringify, sanitizeText } from './sanitize.js';
import type { Style } from './style.js';

interface Frame {
  readonly name: string;
  readonly ratio: number;
  readonly counts: string;
  readonly rate: string;
  readonly etaMs: number | undefined;
  readonly finished: boolean;
  readonly json: Record<string, unknown>;
}

/**
 * Shows progress: on a terminal a bar redrawn in place on stderr; otherwise (pipes, CI logs) a
 * plain line at most every `lineIntervalMs` and always the last one; with `json`, one JSON
 * object per report on stdout.
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

  /** A rebuild's progress, as the runner reports it. */
  report(progress: ProjectionProgress): void {
    this.render({
      name: progress.projection,
      ratio: progress.ratio,
      counts: `${progress.position}/${progress.headPosition} positions`,
      rate: `${Math.round(progress.eventsPerSecond)} ev/s`,
      etaMs: progress.done ? 0 : progress.estimatedMsLeft,
      finished: progress.done,
      json: {
        projection: progress.projection,
        phase: progress.phase,
        processed: progress.processed,
        position: progress.position,
        headPosition: progress.headPosition,
        ratio: progress.ratio,
        eventsPerSecond: Math.round(progress.eventsPerSecond),
        estimatedMsLeft: progress.estimatedMsLeft === undefined ? null : Math.round(progress.estimatedMsLeft),
        done: progress.done,
      },
    });
  }

  /** Progress counted by the caller (`done` of `total` since `startedAt`), with rate and ETA derived. */
  reportCount(name: string, what: string, done: number, total: number, startedAt: number, finished: boolean): void {
    const seconds = (Date.now() - startedAt) / 1000;
    const perSecond = seconds > 0 ? done / seconds : 0;
    const etaMs = finished ? 0 : perSecond > 0 ? ((total - done) / perSecond) * 1000 : undefined;
    this.render({
      name,
      ratio: total === 0 ? 1 : Math.min(1, done / total),
      counts: `${done}/${total} ${what}`,
      rate: `${perSecond.toFixed(1)}/s`,
      etaMs,
      finished,
      json: { projection: name, done, total, estimatedMsLeft: etaMs === undefined ? null : Math.round(etaMs), finished },
    });
  }

  private render(frame: Frame): void {
    if (this.json) {
      this.io.stdout.write(`${safeJsonStringify(frame.json)}\n`);
      return;
    }
    const percent = `${Math.floor(frame.ratio * 100)}%`.padStart(4);
    const eta = frame.finished ? 'done' : frame.etaMs === undefined ? 'ETA ?' : `ETA ${formatDuration(frame.etaMs)}`;
    const name = sanitizeText(frame.name);
    if (this.io.stderr.isTTY === true) {
      const width = Math.max(10, Math.min(40, (this.io.stderr.columns ?? 80) - 60));
      const filled = Math.round(frame.ratio * width);
      const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
      this.io.stderr.write(`\r\u001b[2K${name} ${this.style.green(bar)} ${percent} ${frame.counts} ${frame.rate} ${eta}`);
      this.drewBar = true;
      if (frame.finished) {
        this.io.stderr.write('\n');
        this.drewBar = false;
      }
      return;
    }
    const now = Date.now();
    if (!frame.finished && now - this.lastLineAt < this.lineIntervalMs) return;
    this.lastLineAt = now;
    this.io.stderr.write(`${name}: ${percent} (${frame.counts}, ${frame.rate}, ${eta})\n`);
  }

  /** Ends a bar left mid-line (on failure or Ctrl-C). */
  close(): void {
    if (this.drewBar) this.io.stderr.write('\n');
    this.drewBar = false;
  }
}
