/** Where an append starts: the stream's version and last message; `head` see `KnownHeads.base`. */
export interface Base {
  readonly version: number;
  readonly seq: number;
  /** A JetStream sequence at which `seq` was the stream's last message ('stream' mode expects it). */
  readonly head?: number;
}

const CACHE_SIZE = 10_000;

/**
 * What a store has learned from its acknowledgements, refusals and reads: the last message
 * (sequence and version) of recently used streams, and the JetStream stream's head. Only facts:
 * a remembered message did end its stream when seen, and versions only grow. Bounded (least
 * recently learned out first).
 */
export class KnownHeads {
  private readonly lasts = new Map<string, { version: number; seq: number }>();
  /** The highest JetStream sequence seen. */
  streamHead = 0;
  /**
   * Every message in `(contiguousSince, streamHead]` was acknowledged to this store, so a
   * remembered last message with a sequence in `[contiguousSince, streamHead]` is still its
   * stream's last at `streamHead`: 'stream' mode can expect `streamHead` without reading first.
   */
  private contiguousSince = 0;

  get(streamId: string): { version: number; seq: number } | undefined {
    return this.lasts.get(streamId);
  }

  /** The remembered last message as a base, with `head` when it is known to be last at the stream head. */
  base(known: { version: number; seq: number }): Base {
    const stillLast = this.streamHead > 0 && known.seq >= this.contiguousSince && known.seq <= this.streamHead;
    return stillLast ? { ...known, head: this.streamHead } : { ...known };
  }

  /** Moves the stream head; `acknowledged`: the message at `seq` was this store's own. */
  observe(seq: number, acknowledged: boolean): void {
    if (seq <= this.streamHead) return;
    if (acknowledged && seq === this.streamHead + 1) {
      this.streamHead = seq;
      return;
    }
    this.streamHead = seq;
    this.contiguousSince = acknowledged ? seq : seq + 1;
  }

  remember(streamId: string, version: number, seq: number): void {
    const known = this.lasts.get(streamId);
    if (known !== undefined && known.seq >= seq) return;
    this.lasts.delete(streamId);
    this.lasts.set(streamId, { version, seq });
    if (this.lasts.size > CACHE_SIZE) {
      const oldest = this.lasts.keys().next();
      if (oldest.done !== true) this.lasts.delete(oldest.value);
    }
  }
}
