/**
 * The local engine folds the threads' sums into the run's only when a checkpoint is due or the
 * last tomogram is done: between, the threads go on adding into their own sums. The run's sums
 * are the same either way (to summation order), and `done` lists exactly the tomograms in them.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFORMANCE, REPO } from './helpers/paths.js';

// Built modules: the engine's worker threads load dist/src/engine/worker.js.
const { accumulate, zeroHalves } = (await import(path.join(REPO, 'dist/src/engine/local.js'))) as typeof import('../src/engine/local.js');
const { planRun } = (await import(path.join(REPO, 'dist/src/engine/plan.js'))) as typeof import('../src/engine/plan.js');
const { DEFAULTS } = (await import(path.join(REPO, 'dist/src/engine/options.js'))) as typeof import('../src/engine/options.js');
const { Progress } = (await import(path.join(REPO, 'dist/src/engine/progress.js'))) as typeof import('../src/engine/progress.js');
const { PhaseTimes } = (await import(path.join(REPO, 'dist/src/engine/phases.js'))) as typeof import('../src/engine/phases.js');

const cwd = process.cwd();
beforeAll(() => process.chdir(path.join(CONFORMANCE, 'V1')));
afterAll(() => process.chdir(cwd));

async function run(threads: number, due: boolean): Promise<{ halves: ReturnType<typeof zeroHalves>; folds: { last: boolean; done: number[] }[] }> {
  const o = { ...DEFAULTS, i: 'optimisation_set.star', o: '/nonexistent', b: 32, bin: 2, commandLine: [], jOut: 2, jIn: 1 };
  const plan = planRun(o);
  expect(plan.work.length).toBeGreaterThan(1);
  const done = new Set<number>();
  const folds: { last: boolean; done: number[] }[] = [];
  const halves = zeroHalves(plan.kernel.s);
  await accumulate(plan, threads, new Progress(plan.totalParticles, 'particles', 'none'), {
    halves,
    done,
    phases: new PhaseTimes(),
    checkpointDue: () => due,
    onFolded: (last) => {
      folds.push({ last, done: [...done].sort() });
    },
  });
  return { halves, folds };
}

function maxRelDiff(a: Float64Array, b: Float64Array): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  expect(m).toBeGreaterThan(0);
  return d / m;
}

describe('folding the threads’ sums', () => {
  for (const threads of [0, 2]) {
    it(`${threads ? `${threads} threads` : 'in the calling thread'}: once at the end unless a checkpoint is due, with the same sums`, async () => {
      const every = await run(threads, true);
      const once = await run(threads, false);
      const all = every.folds[every.folds.length - 1].done;
      expect(all.length).toBeGreaterThan(1);
      // A fold after every tomogram, `done` growing by one each time.
      expect(every.folds.map((f) => f.done.length)).toEqual(all.map((_, i) => i + 1));
      expect(every.folds.map((f) => f.last)).toEqual(all.map((_, i) => i === all.length - 1));
      // Else a single fold, after the last tomogram, covering them all.
      expect(once.folds).toEqual([{ last: true, done: all }]);
      for (const h of [0, 1]) {
        expect(maxRelDiff(once.halves[h].data, every.halves[h].data)).toBeLessThan(1e-12);
        expect(maxRelDiff(once.halves[h].weight, every.halves[h].weight)).toBeLessThan(1e-12);
      }
    });
  }
});
