/**
 * What reads return: an async iterable of events that also exposes the pages the backend read
 * them in. `for await` over events is the simple way; `pages()` lets hot loops (rehydration,
 * projection catch-up) fold a whole page synchronously instead of paying one await per event.
 */
export interface EventStream<T> extends AsyncIterable<T> {
  pages(): AsyncIterable<readonly T[]>;
  /** Reads everything into one array. Mind the memory on long streams. */
  toArray(): Promise<T[]>;
}

/** Builds an `EventStream` from a function that yields pages; lazily, each iteration reads anew. */
export class PagedEventStream<T> implements EventStream<T> {
  constructor(private readonly readPages: () => AsyncIterable<readonly T[]>) {}

  pages(): AsyncIterable<readonly T[]> {
    return this.readPages();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for await (const page of this.readPages()) {
      for (const item of page) yield item;
    }
  }

  async toArray(): Promise<T[]> {
    const all: T[] = [];
    for await (const page of this.readPages()) {
      for (const item of page) all.push(item);
    }
    return all;
  }
}
