/** A wake-up flag a loop can sleep on: set by new input, stop requests, or a timeout. */
export class Alarm {
  private pending = false;
  private ring: (() => void) | undefined;

  wake(): void {
    this.pending = true;
    this.ring?.();
  }

  sleep(ms: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.ring = undefined;
        this.pending = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.ring = done;
    });
  }
}
