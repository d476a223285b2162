/** The worker loop's sleep (src/distributed/wakeup.ts): no wake-up is lost. */
import { describe, expect, it } from 'vitest';
import { Wakeup } from '../src/distributed/wakeup.js';

const elapsed = async (p: Promise<void>): Promise<number> => {
  const t0 = performance.now();
  await p;
  return performance.now() - t0;
};

describe('Wakeup', () => {
  it('a wake during the sleep ends it', async () => {
    const w = new Wakeup();
    setTimeout(() => w.wake(), 20);
    expect(await elapsed(w.sleep(5000))).toBeLessThan(1000);
  });

  it('a wake that came while nobody slept ends the next sleep at once, once', async () => {
    const w = new Wakeup();
    w.wake(); // e.g. a chunk finished while the request was in flight
    expect(await elapsed(w.sleep(5000))).toBeLessThan(1000);
    expect(await elapsed(w.sleep(60))).toBeGreaterThanOrEqual(50);
  });

  it('clear() forgets the wake-ups the caller has looked at; a sleep without wake lasts its time', async () => {
    const w = new Wakeup();
    w.wake();
    w.clear();
    expect(await elapsed(w.sleep(60))).toBeGreaterThanOrEqual(50);
  });
});
