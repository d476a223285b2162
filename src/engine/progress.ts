/**
 * Progress of long work on stderr: a bar with rate and ETA on a terminal, plain periodic lines
 * otherwise (log files of batch jobs), nothing when disabled.
 */
export type ProgressMode = 'auto' | 'lines' | 'none';

export class Progress {
  private done = 0;
  private readonly start = Date.now();
  private lastPrint = 0;
  private lastFraction = 0;
  private readonly tty: boolean;

  constructor(
    private readonly total: number,
    private readonly unit: string,
    private readonly mode: ProgressMode = 'auto',
    // On stdout, as RELION's progress bar (its GUI shows stderr as errors).
    private readonly stream: NodeJS.WriteStream = process.stdout,
  ) {
    this.tty = mode === 'auto' && Boolean(stream.isTTY);
  }

  get count(): number {
    return this.done;
  }

  tick(n = 1): void {
    this.done += n;
    if (this.mode === 'none') return;
    const now = Date.now();
    const fraction = this.total > 0 ? this.done / this.total : 1;
    if (this.tty) {
      if (now - this.lastPrint >= 100 || this.done >= this.total) {
        this.lastPrint = now;
        this.stream.write(`\r${this.bar(fraction)} ${this.describe(fraction, now)}\x1b[K`);
      }
    } else if (now - this.lastPrint >= 5000 || fraction - this.lastFraction >= 0.1 || this.done >= this.total) {
      this.lastPrint = now;
      this.lastFraction = fraction;
      this.stream.write(`progress: ${this.describe(fraction, now)}\n`);
    }
  }

  finish(): void {
    if (this.tty) this.stream.write('\n');
  }

  private bar(fraction: number): string {
    const width = 30;
    const full = Math.round(fraction * width);
    return `[${'#'.repeat(full)}${'.'.repeat(width - full)}]`;
  }

  private describe(fraction: number, now: number): string {
    const elapsed = (now - this.start) / 1000;
    const eta = fraction > 0 ? (elapsed * (1 - fraction)) / fraction : NaN;
    return `${this.done}/${this.total} ${this.unit} (${(100 * fraction).toFixed(0)}%), elapsed ${formatSeconds(elapsed)}, ETA ${
      Number.isFinite(eta) ? formatSeconds(eta) : '?'
    }`;
  }
}

export function formatSeconds(sec: number): string {
  const s = Math.max(0, Math.round(sec));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(r).padStart(2, '0')}` : `${m}:${String(r).padStart(2, '0')}`;
}
