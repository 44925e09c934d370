/** A snapshot of a catch-up or rebuild, for progress bars and logs. */
export interface ProjectionProgress {
  readonly projection: string;
  readonly phase: 'catch-up' | 'rebuild';
  /** Why a rebuild runs: asked for, or the projection version changed. */
  readonly reason: 'requested' | 'version-changed' | undefined;
  /** Events applied since the phase began. */
  readonly processed: number;
  /** The checkpoint: last position applied. */
  readonly position: number;
  /** The log's head when the phase began: the goal of this phase. */
  readonly headPosition: number;
  /** Events applied per second, averaged over the phase. */
  readonly eventsPerSecond: number;
  /**
   * Estimated time left, from the positions still to go and the rate so far. Positions may have
   * gaps (rolled-back appends), so it errs on the long side. Undefined until the rate is known.
   */
  readonly estimatedMsLeft: number | undefined;
  /** Fraction of the way from the phase's start to `headPosition`, 0–1. */
  readonly ratio: number;
  readonly done: boolean;
}

/** Measures one catch-up or rebuild; emits at most every `intervalMs`, and always the last one. */
export class ProgressMeter {
  private processed = 0;
  private lastEmit = 0;
  private readonly startedAt = performance.now();

  constructor(
    private readonly projection: string,
    private readonly phase: ProjectionProgress['phase'],
    private readonly reason: ProjectionProgress['reason'],
    private readonly startPosition: number,
    private readonly headPosition: number,
    private readonly intervalMs: number,
    private readonly emit: ((progress: ProjectionProgress) => void) | undefined,
  ) {}

  record(count: number, position: number): void {
    this.processed += count;
    if (this.emit === undefined) return;
    const now = performance.now();
    if (now - this.lastEmit < this.intervalMs) return;
    this.lastEmit = now;
    this.emit(this.snapshot(position, false, now));
  }

  finish(position: number): void {
    this.emit?.(this.snapshot(position, true, performance.now()));
  }

  private snapshot(position: number, done: boolean, now: number): ProjectionProgress {
    const seconds = (now - this.startedAt) / 1000;
    const eventsPerSecond = seconds > 0 ? this.processed / seconds : 0;
    const left = Math.max(0, this.headPosition - position);
    const span = this.headPosition - this.startPosition;
    return Object.freeze({
      projection: this.projection,
      phase: this.phase,
      reason: this.reason,
      processed: this.processed,
      position,
      headPosition: this.headPosition,
      eventsPerSecond,
      estimatedMsLeft: done ? 0 : eventsPerSecond > 0 ? (left / eventsPerSecond) * 1000 : undefined,
      ratio: done || span <= 0 ? 1 : Math.min(1, Math.max(0, (position - this.startPosition) / span)),
      done,
    });
  }
}
