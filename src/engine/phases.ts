/**
 * Wall time per phase of a run (reading inputs, loading tilt series, back-projection, checkpoints,
 * symmetrisation, finalisation), for the closing log line, the benchmark and metrics.
 */
export class PhaseTimes {
  readonly seconds = new Map<string, number>();

  add(phase: string, seconds: number): void {
    this.seconds.set(phase, (this.seconds.get(phase) ?? 0) + seconds);
  }

  time<T>(phase: string, fn: () => T): T {
    const t0 = performance.now();
    try {
      return fn();
    } finally {
      this.add(phase, (performance.now() - t0) / 1000);
    }
  }

  async timeAsync<T>(phase: string, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      this.add(phase, (performance.now() - t0) / 1000);
    }
  }

  toString(): string {
    return [...this.seconds].map(([k, v]) => `${k} ${v.toFixed(2)} s`).join(', ');
  }

  toJSON(): Record<string, number> {
    return Object.fromEntries(this.seconds);
  }
}
