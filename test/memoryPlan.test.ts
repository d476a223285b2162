/**
 * --mem plans with the finalisation pool: its idle isolates are counted from the start of the run,
 * its threads and the half-map spectra at the end; the accumulation threads get the budget first,
 * and a budget that holds no pool thread finalises in the calling thread.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planCoordinatorMemory } from '../src/distributed/memory.js';
import { RUNTIME_BYTES, finalisationBytes, finalisationIdleBytes, finalisationThreadBytes, finalisationThreads, planBytes, planMemory } from '../src/engine/local.js';
import { DEFAULTS, ReconstructOptions } from '../src/engine/options.js';
import { planRun } from '../src/engine/plan.js';
import { accumulatorBytes } from '../src/recon/backproject.js';
import { CONFORMANCE } from './helpers/paths.js';

const GiB = 1024 ** 3;

function options(extra: Partial<ReconstructOptions>): ReconstructOptions {
  return { ...DEFAULTS, i: 'optimisation_set.star', o: '/nonexistent', b: 48, commandLine: [], jOut: 2, jIn: 1, ...extra };
}
// The optimisation set names its files relative to the working directory, as RELION's do.
const cwd = process.cwd();
beforeAll(() => process.chdir(path.join(CONFORMANCE, 'V1')));
afterAll(() => process.chdir(cwd));

describe('finalisation memory', () => {
  it('finalisationBytes: the three sums, the two spectra, per thread an isolate and a float32 volume, one float32 volume in the caller', () => {
    const s = 64;
    const sh = 33;
    const f32 = 4 * s ** 3;
    // Sums and spectra are transformed where they are (WebAssembly memories of their own): no
    // per-thread copy of a volume, whatever the box.
    expect(finalisationThreadBytes(s)).toBe(finalisationIdleBytes(1) + f32);
    expect(finalisationThreadBytes(56)).toBe(finalisationIdleBytes(1) + 4 * 56 ** 3);
    expect(finalisationBytes(s, true, 2)).toBe(3 * accumulatorBytes(s) + 2 * 2 * sh * s * s * 8 + 2 * finalisationThreadBytes(s) + f32);
    expect(finalisationBytes(s, false, 1)).toBe(3 * accumulatorBytes(s) + finalisationThreadBytes(s) + f32);
  });

  it('finalisationThreads: one per tag up to --j; fewer, or none, within a budget', () => {
    const s = 128;
    expect(finalisationThreads(s, true, 6, 0)).toBe(3);
    expect(finalisationThreads(s, true, 2, 0)).toBe(2);
    expect(finalisationThreads(s, false, 6, 0)).toBe(1);
    const two = finalisationBytes(s, true, 2);
    expect(finalisationThreads(s, true, 6, two)).toBe(2);
    expect(finalisationThreads(s, true, 6, two - 1)).toBe(1);
    expect(finalisationThreads(s, true, 6, finalisationBytes(s, true, 1) - 1)).toBe(0);
  });

  it('planMemory counts the idle pool while accumulating and the pool at the end', () => {
    const o = options({ j: 3 });
    const plan = planRun(o);
    const free = planMemory(plan, o);
    expect(free.finaliseThreads).toBe(3);
    const noPool = planMemory(plan, { ...o, j: 1 });
    expect(noPool.finaliseThreads).toBe(1);
    expect(free.sharedBytes - noPool.sharedBytes).toBe(finalisationIdleBytes(2));
    expect(free.finaliseBytes - noPool.finaliseBytes).toBe(2 * finalisationThreadBytes(48));
    expect(free.totalBytes).toBeGreaterThanOrEqual(free.finaliseBytes);
    // No pool without worker threads or without maps.
    expect(planMemory(plan, { ...o, threads: 0 }).finaliseThreads).toBe(0);
    expect(planMemory(plan, { ...o, noRecon: true }).finaliseThreads).toBe(0);
  });

  it("counts the run's plan (every particle and tomogram's records) and refuses a --mem symmetrisation cannot keep", () => {
    const o = options({ j: 3 });
    const plan = planRun(o);
    let records = 0;
    for (const w of plan.work) records += w.records.byteLength;
    expect(planBytes(plan)).toBe(plan.totalParticles * 2560 + records);
    const free = planMemory(plan, o);
    expect(free.finaliseBytes).toBe(RUNTIME_BYTES + planBytes(plan) + finalisationBytes(48, true, 3));
    // Symmetry keeps six accumulator sets (at box 256 more than the accumulation needs): a budget
    // below that is refused (the run went over it before: 1233 MiB under --mem 1.0).
    const sym = options({ j: 3, b: 256, sym: 'O' });
    const big = planRun(sym);
    const sixSets = RUNTIME_BYTES + planBytes(big) + 6 * accumulatorBytes(256);
    expect(planMemory(big, sym).totalBytes).toBeGreaterThanOrEqual(sixSets);
    expect(() => planMemory(big, { ...sym, mem: (sixSets - 2 ** 20) / GiB })).toThrow(
      /cannot hold the symmetrisation \(--sym O\) at --b 256: it keeps six accumulator sets, at least [0-9.]+ GB is needed/,
    );
    const fits = planMemory(big, { ...sym, mem: (sixSets + 200 * 2 ** 20) / GiB });
    expect(fits.totalBytes).toBeLessThanOrEqual(sixSets + 200 * 2 ** 20);
    // The coordinator holds the runtime and the plan too.
    const seg = 1 << 17;
    const bare = planCoordinatorMemory(48, true, false, -1, 6, seg, 4);
    const withPlan = planCoordinatorMemory(48, true, false, -1, 6, seg, 4, RUNTIME_BYTES + planBytes(plan));
    expect(withPlan.totalBytes - bare.totalBytes).toBe(RUNTIME_BYTES + planBytes(plan));
  });

  it('under --mem the accumulation threads come first, the pool takes what is left (possibly nothing)', () => {
    const o = options({ j: 3 });
    const plan = planRun(o);
    const free = planMemory(plan, o);
    // Room for two accumulation threads and one pool thread only.
    const tight = planMemory(plan, { ...o, mem: (free.totalBytes - finalisationIdleBytes(2)) / GiB });
    expect(tight.threads).toBe(free.threads);
    expect(tight.finaliseThreads).toBe(1);
    expect(tight.totalBytes).toBeLessThanOrEqual(free.totalBytes - finalisationIdleBytes(2));
    // The CLI test's 0.12 GB: one accumulation thread, no pool.
    const small = planMemory(plan, { ...o, mem: 0.12 });
    expect(small.threads).toBe(1);
    expect(small.finaliseThreads).toBe(0);
    expect(small.totalBytes).toBeLessThanOrEqual(0.12 * GiB);
    expect(() => planMemory(plan, { ...o, mem: 0.05 })).toThrow(/--mem 0.05 GB cannot hold one accumulator set for --b 48/);
  });

  it('the coordinator counts its pool in every phase', () => {
    const seg = 1024; // small reduction buffers: the finalisation is the largest phase
    const s = 128;
    const p = planCoordinatorMemory(s, true, false, -1, 6, seg, 4);
    expect(p.finaliseThreads).toBe(3);
    expect(p.totalBytes).toBeGreaterThanOrEqual(finalisationBytes(s, true, 3));
    const capped = planCoordinatorMemory(s, true, false, finalisationBytes(s, true, 1) / GiB, 6, seg, 4);
    expect(capped.finaliseThreads).toBe(1);
    const none = planCoordinatorMemory(s, true, false, finalisationBytes(s, true, 0) / GiB, 6, seg, 4);
    expect(none.finaliseThreads).toBe(0);
    expect(() => planCoordinatorMemory(s, true, false, 0.01, 6, seg, 4)).toThrow(/cannot hold the coordinator's sums for --b 128/);
  });
});

describe('collectGarbage', () => {
  it('frees array buffers nothing refers to any more (what the plans count on at the end of a back-projection)', async () => {
    const { collectGarbage } = await import('../src/engine/collectGarbage.js');
    collectGarbage();
    const before = process.memoryUsage().arrayBuffers;
    let big: Float64Array | null = new Float64Array(8 * 1024 * 1024).fill(1); // 64 MiB
    // (Other buffers of the test process come and go meanwhile: margins of 8 and 16 MiB.)
    expect(process.memoryUsage().arrayBuffers - before).toBeGreaterThan(56 * 1024 * 1024);
    big = null;
    collectGarbage();
    expect(big).toBeNull();
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 1024 * 1024);
  });
});
