/**
 * Keeps appends to a stream in call order on a store that would otherwise run them at once (an
 * asynchronous driver with a pool, and group commit off): a call that touches a stream with a call
 * still under way starts when that one has settled; calls on other streams start at once. Without
 * it, two appends made without waiting (`expectedVersion: 'any'`) could reach the database on two
 * connections in either order.
 */
export class StreamCallOrder {
  private readonly tails = new Map<string, Promise<void>>();

  run<T>(streamIds: readonly string[], call: () => Promise<T>): Promise<T> {
    let before: Promise<void>[] | undefined;
    for (const id of streamIds) {
      const tail = this.tails.get(id);
      if (tail !== undefined) (before ??= []).push(tail);
    }
    const result = before === undefined ? call() : Promise.all(before).then(call);
    const tail = result.then(ignore, ignore);
    for (const id of streamIds) this.tails.set(id, tail);
    void tail.then(() => {
      for (const id of streamIds) if (this.tails.get(id) === tail) this.tails.delete(id);
    });
    return result;
  }

  /** Waits until every call made so far has settled (`close()` lets accepted appends finish). */
  async drain(): Promise<void> {
    while (this.tails.size > 0) await Promise.all(this.tails.values());
  }
}

function ignore(): void {}
