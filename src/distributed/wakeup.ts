/**
 * A sleep that events cut short, without losing an event that comes while nobody sleeps.
 *
 * The worker's loop sends a request, awaits the reply, and may then sleep on a 'wait'. A compute
 * thread that finishes while the request is in flight must still end that sleep: its wake-up is
 * remembered until the next sleep (or until the loop looks at its state again, `clear`). Without
 * that, the finished chunk sat unreported for the whole 'wait' (a 1 s stall at the end of runs).
 */
export class Wakeup {
  private resolveSleep: (() => void) | null = null;
  private pending = false;

  /** Ends the current sleep, or the next one at once if none is in progress. */
  wake(): void {
    const r = this.resolveSleep;
    if (r) {
      this.resolveSleep = null;
      r();
    } else this.pending = true;
  }

  /** Forgets wake-ups so far: the caller is about to look at everything they could signal. */
  clear(): void {
    this.pending = false;
  }

  /** Sleeps up to ms; returns early on wake(), at once if one came since the last sleep or clear(). */
  sleep(ms: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.resolveSleep = null;
        resolve();
      }, ms);
      this.resolveSleep = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }
}
