import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fsc, pearson, resolutionAt } from '../src/analysis/fsc.js';
import { DEFAULTS } from '../src/engine/options.js';
import { reconstruct } from '../src/engine/reconstruct.js';
import { TomoError } from '../src/errors.js';
import { readMrc, readMrcHeader } from '../src/formats/mrc.js';
import { formatStar, readStar } from '../src/formats/star.js';
import { projectionFromAngles } from '../src/geometry/projection.js';
import { readParticleSet, particlePosition } from '../src/model/particleSet.js';
import { readTomogramSet } from '../src/model/tomogramSet.js';
import { readTrajectories } from '../src/model/trajectories.js';
import { simulateDataset } from '../src/simulate/dataset.js';
import { groundTruth, makeModel, ParticleModel } from '../src/simulate/model.js';
import { SIM_DEFAULTS, SimulationParams } from '../src/simulate/params.js';
import { Rng } from '../src/simulate/random.js';
import { Renderer } from '../src/simulate/render.js';
import { doseSymmetricRanks, SimParticle, SimTomogram } from '../src/simulate/scene.js';

const SHARED = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../shared');
const CONFORMANCE = path.join(SHARED, 'conformance');

let tmp = '';
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'simulate-test-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Runs fn with the working directory set to dir (STAR paths are relative to it, as in RELION). */
async function inDir<T>(dir: string, fn: () => Promise<T> | T): Promise<T> {
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    return await fn();
  } finally {
    process.chdir(cwd);
  }
}

/** A small, fast dataset: 2 tomograms × 4 particles, 7 tilts, with motion. */
const TINY: SimulationParams = {
  ...SIM_DEFAULTS,
  seed: 11,
  tomos: 2,
  particles: 4,
  tiltRange: 30,
  tiltStep: 10,
  image: [192, 200],
  tomoSize: [192, 200, 96],
  box: 32,
  motion: true,
};

function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

describe('simulate: files', () => {
  it('writes the RELION 5 layout of the conformance sets', () => {
    const dir = path.join(tmp, 'layout');
    const s = simulateDataset(TINY, dir);
    expect(listFiles(dir)).toEqual(
      [
        'ground_truth.mrc',
        'motion.star',
        'optimisation_set.star',
        'particles.star',
        'tilt_series/TS_01.mrcs',
        'tilt_series/TS_01.star',
        'tilt_series/TS_02.mrcs',
        'tilt_series/TS_02.star',
        'tomograms.star',
        'truth.json',
      ].sort(),
    );
    expect(s.files.sort()).toEqual(listFiles(dir));
    const opt = readStar(path.join(dir, 'optimisation_set.star'));
    expect(opt[0].name).toBe('optimisation_set');
    expect(opt[0].labels).toEqual(['rlnTomoParticlesFile', 'rlnTomoTomogramsFile', 'rlnTomoTrajectoriesFile']);
    expect(opt[0].rows[0]).toEqual(['particles.star', 'tomograms.star', 'motion.star']);
    const ts = readStar(path.join(dir, 'tilt_series/TS_02.star'));
    expect(ts[0].name).toBe('TS_02');
    expect(ts[0].rows.map((r) => r[0])).toEqual([1, 2, 3, 4, 5, 6, 7].map((i) => `00000${i}@tilt_series/TS_02.mrcs`));
    const parts = readStar(path.join(dir, 'particles.star'));
    expect(parts.map((b) => b.name)).toEqual(['general', 'optics', 'particles']);
    const pb = parts[2];
    const col = (l: string): string[] => pb.rows.map((r) => r[pb.labels.indexOf(l)]);
    expect(col('rlnRandomSubset')).toEqual(['1', '2', '1', '2', '1', '2', '1', '2']);
    expect(col('rlnTomoParticleName')).toEqual(['TS_01/1', 'TS_01/2', 'TS_01/3', 'TS_01/4', 'TS_02/1', 'TS_02/2', 'TS_02/3', 'TS_02/4']);
    for (const l of ['rlnTomoSubtomogramRot', 'rlnAngleRot', 'rlnOriginXAngst', 'rlnCenteredCoordinateZAngst']) expect(pb.labels).toContain(l);
    const h = readMrcHeader(path.join(dir, 'tilt_series/TS_01.mrcs'));
    expect([h.nx, h.ny, h.nz, h.mode]).toEqual([192, 200, 7, 2]);
    expect(h.pixelSize[0]).toBeCloseTo(2, 6);
    const g = readMrcHeader(path.join(dir, 'ground_truth.mrc'));
    expect([g.nx, g.ny, g.nz]).toEqual([32, 32, 32]);
    expect(g.pixelSize[2]).toBeCloseTo(2, 6);
  });

  it("parses with the project's own readers, consistently with truth.json", async () => {
    const dir = path.join(tmp, 'layout');
    const truth = JSON.parse(fs.readFileSync(path.join(dir, 'truth.json'), 'utf8'));
    await inDir(dir, () => {
      const ts = readTomogramSet('tomograms.star');
      expect(ts.tomograms.map((t) => t.name)).toEqual(['TS_01', 'TS_02']);
      const t0 = ts.load(ts.tomograms[0]);
      expect(t0.frameCount).toBe(7);
      expect([t0.imageW, t0.imageH]).toEqual([192, 200]);
      expect(t0.hand).toBe(-1);
      // dose-symmetric order 0°, +10°, −10°, −20°, +20°, +30°, −30° at 3 e/Å² per tilt
      expect(t0.dose).toEqual([18, 9, 6, 0, 3, 12, 15]);
      expect(t0.frames[2]).toEqual({ path: 'tilt_series/TS_01.mrcs', section: 2 });
      // Projection matrices read back = those used for rendering.
      t0.projections.forEach((P, f) => {
        const ref = truth.tomograms[0].frames[f].projection_matrix.flat();
        for (let i = 0; i < 16; i++) expect(P[i]).toBeCloseTo(ref[i], 9);
      });
      const ps = readParticleSet('particles.star', ts);
      expect(ps.particles.length).toBe(8);
      expect(ps.hasHalfSets).toBe(true);
      ps.particles.forEach((p, i) => {
        const tomo = ts.byName.get(p.tomoName)!;
        const pos = particlePosition(p, ps.optics[p.optics], tomo);
        const ref = truth.particles[i];
        for (let a = 0; a < 3; a++) expect(pos[a]).toBeCloseTo(ref.position_px[a], 9);
        const A = ref.particle_to_tomo.flat();
        for (let k = 0; k < 9; k++) expect(p.rotation[k]).toBeCloseTo(A[k], 9);
      });
      const tr = readTrajectories('motion.star', ps);
      expect(tr.shifts.length).toBe(8);
      expect(tr.shifts[5]!.length).toBe(21);
      expect(Array.from(tr.shifts[5]!)).toEqual(truth.particles[5].motion_shifts_angst.flat());
      // the first exposure (0°, pre-exposure 0) is the motion reference
      expect(Array.from(tr.shifts[5]!.subarray(9, 12))).toEqual([0, 0, 0]);
    });
  });

  it('gives identical bytes for the same seed, different ones for another seed', () => {
    const a = path.join(tmp, 'seed-a');
    const b = path.join(tmp, 'seed-b');
    const c = path.join(tmp, 'seed-c');
    simulateDataset(TINY, a);
    simulateDataset(TINY, b);
    simulateDataset({ ...TINY, seed: 12 }, c);
    for (const f of listFiles(a)) {
      expect(fs.readFileSync(path.join(b, f)).equals(fs.readFileSync(path.join(a, f))), f).toBe(true);
    }
    expect(fs.readFileSync(path.join(c, 'tilt_series/TS_01.mrcs')).equals(fs.readFileSync(path.join(a, 'tilt_series/TS_01.mrcs')))).toBe(false);
    expect(fs.readFileSync(path.join(c, 'particles.star'), 'utf8')).not.toBe(fs.readFileSync(path.join(a, 'particles.star'), 'utf8'));
  });

  it('rejects impossible parameters with a TomoError', () => {
    const dir = path.join(tmp, 'bad');
    expect(() => simulateDataset({ ...TINY, box: 33 }, dir)).toThrow(TomoError);
    expect(() => simulateDataset({ ...TINY, sym: 'D2' }, dir)).toThrow(/cyclic symmetry/);
    expect(() => simulateDataset({ ...TINY, particles: 500 }, dir)).toThrow(/cannot place 500 particles/);
    expect(() => simulateDataset({ ...TINY, snr: 0 }, dir)).toThrow(/--snr/);
    expect(fs.existsSync(dir)).toBe(false); // nothing is written before validation passes
  });
});

describe('simulate: model', () => {
  it('C4: the ground truth is invariant under 90° rotations about z', () => {
    const m = makeModel(new Rng(3), 32, 2, 'C4');
    expect(m.symmetry).toBe('C4');
    const v = groundTruth(m);
    const B = 32;
    const c = B / 2;
    let maxDiff = 0;
    let max = 0;
    for (let z = 0; z < B; z++) {
      for (let y = 1; y < B; y++) {
        for (let x = 1; x < B; x++) {
          // Rz(90°) about the centre voxel: (x, y) -> (c − (y − c), c + (x − c))
          const xr = 2 * c - y;
          const yr = x;
          const a = v[(z * B + y) * B + x];
          const b = v[(z * B + yr) * B + xr];
          maxDiff = Math.max(maxDiff, Math.abs(a - b));
          max = Math.max(max, a);
        }
      }
    }
    expect(maxDiff).toBeLessThan(1e-5 * max);
  });
});

describe.skipIf(!fs.existsSync(path.join(CONFORMANCE, 'V1')))('simulate: conventions of the conformance data', () => {
  it('uses the dose-symmetric order of V1 (pre-exposure per tilt)', () => {
    const b = readStar(path.join(CONFORMANCE, 'V1/tilt_series/TS_01.star'))[0];
    const col = b.labels.indexOf('rlnMicrographPreExposure');
    expect(doseSymmetricRanks(31).map((r) => r * 3)).toEqual(b.rows.map((r) => Number(r[col])));
  });

  // The renderer, fed V2's recorded poses, reproduces V2's tilt images up to their noise: the
  // residual has exactly the recorded noise σ, so no signal is left over (measured: σ_res 4.1487
  // vs noise σ 4.1498; signal power 13.7765 = truth.json's).
  it("renders V2's tilt series from its truth.json to within the noise", () => {
    const T = JSON.parse(fs.readFileSync(path.join(CONFORMANCE, 'V2/truth.json'), 'utf8'));
    const P = T.parameters;
    const params: SimulationParams = { ...SIM_DEFAULTS, box: P.box, pixel: P.pixel_size, voltage: P.voltage, cs: P.cs, q0: P.q0 };
    const model: ParticleModel = {
      symmetry: T.model.symmetry,
      box: P.box,
      pixelSize: P.pixel_size,
      centres: Float64Array.from(T.model.blob_centres_px.flat()),
      sigmas: Float64Array.from(T.model.blob_sigmas_px),
      amplitudes: Float64Array.from(T.model.blob_amplitudes),
    };
    const r = new Renderer(params, model, T.patch_size);
    const t = T.tomograms[0];
    const [W, H] = t.image_size;
    const tomo: SimTomogram = {
      index: 0,
      name: t.name,
      size: t.size,
      centre: t.centre,
      imageW: W,
      imageH: H,
      hand: t.hand,
      defocusSlope: t.defocus_slope,
      nominalTiltAxis: 85,
      nominalDefocus: -2,
      frames: t.frames.map((f: Record<string, number>) => ({
        index: f.index,
        nominalTilt: f.nominal_tilt,
        xTilt: f.xtilt,
        yTilt: f.ytilt,
        zRot: f.zrot,
        xShiftAngst: f.xshift,
        yShiftAngst: f.yshift,
        defocusU: f.defocus_u,
        defocusV: f.defocus_v,
        defocusAngle: f.defocus_angle,
        preExposure: f.pre_exposure,
        ctfScale: f.ctf_scale,
        projection: projectionFromAngles(
          { xTilt: f.xtilt, yTilt: f.ytilt, zRot: f.zrot, xShiftAngst: f.xshift, yShiftAngst: f.yshift },
          P.pixel_size,
          W,
          H,
          t.size,
        ),
      })),
    };
    const F = tomo.frames.length;
    const stack = new Float32Array(W * H * F);
    let power = 0;
    let count = 0;
    for (const q of T.particles) {
      const particle = {
        position: q.position_px,
        rotation: Float64Array.from(q.particle_to_tomo.flat()),
        shifts: q.motion_shifts_angst ? Float64Array.from(q.motion_shifts_angst.flat()) : null,
      } as unknown as SimParticle;
      for (let f = 0; f < F; f++, count++) power += r.renderFrame(tomo, f, particle, stack, f * W * H);
    }
    expect(power / count).toBeCloseTo(T.signal_power, 3);
    const ref = readMrc(path.join(CONFORMANCE, 'V2/tilt_series/TS_01.mrcs')).data;
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < ref.length; i++) {
      const d = ref[i] - stack[i];
      s += d;
      s2 += d * d;
    }
    const mean = s / ref.length;
    const residualSigma = Math.sqrt(s2 / ref.length - mean * mean);
    // Any mismatch would add to the noise variance; allow 0.5 % of the signal power.
    expect(residualSigma ** 2).toBeLessThan(T.noise_sigma ** 2 + 0.005 * T.signal_power);
    expect(residualSigma).toBeGreaterThan(0.99 * T.noise_sigma);
  });
});

/**
 * The end-to-end check: simulate, reconstruct in-process, compare with the ground truth.
 * Measured (seed 4: 1 tomogram, 24 particles, box 48, SNR 2, motion): r 0.828, FSC 0.5 9.70 Å,
 * FSC 0.143 8.79 Å. Deliberately wrong conventions are clearly worse (numbers in each test).
 */
describe('simulate → reconstruct', () => {
  const E2E: SimulationParams = { ...SIM_DEFAULTS, seed: 4, tomos: 1, particles: 24, snr: 2, motion: true };
  const B = E2E.box;

  async function run(dir: string, extra: Partial<typeof DEFAULTS> = {}, edit?: () => void): Promise<{ r: number; f05: number; f0143: number }> {
    return inDir(dir, async () => {
      edit?.();
      await reconstruct({ ...DEFAULTS, i: 'optimisation_set.star', b: B, o: 'recon', commandLine: [], threads: 0, progress: 'none', ...extra });
      const m = readMrc('recon/merged.mrc').data;
      const g = readMrc('ground_truth.mrc').data;
      const c = fsc(m, g, B);
      return { r: pearson(m, g), f05: resolutionAt(c, 0.5, B, E2E.pixel), f0143: resolutionAt(c, 0.143, B, E2E.pixel) };
    });
  }

  let good = { r: 0, f05: 0, f0143: 0 };
  const dir = (): string => path.join(tmp, 'e2e');

  it('reconstructs the ground truth', async () => {
    simulateDataset(E2E, dir());
    good = await run(dir());
    expect(good.r).toBeGreaterThan(0.75);
    expect(good.f0143).toBeLessThan(10);
    expect(good.f05).toBeLessThan(11);
  });

  it('matches the ground truth far better than its mirror image (the hand is right)', async () => {
    await inDir(dir(), () => {
      const m = readMrc('recon/merged.mrc').data;
      const g = readMrc('ground_truth.mrc').data;
      const mirrored = new Float32Array(g.length);
      for (let z = 0; z < B; z++) for (let y = 0; y < B; y++) for (let x = 0; x < B; x++) {
        mirrored[(z * B + y) * B + x] = g[(((B - z) % B) * B + y) * B + x];
      }
      const rMirror = pearson(m, mirrored);
      const f05Mirror = resolutionAt(fsc(m, mirrored, B), 0.5, B, E2E.pixel);
      // measured: r 0.667, FSC 0.5 at 33.8 Å (vs 0.828 and 9.7 Å for the truth itself)
      expect(rMirror).toBeLessThan(good.r - 0.1);
      expect(f05Mirror).toBeGreaterThan(good.f05 + 10);
    });
  });

  it('wrong Euler convention in the particle file (rot and psi swapped) breaks it', async () => {
    const bad = await run(dir(), {}, () => {
      const blocks = readStar('particles.star');
      const p = blocks[2];
      const ir = p.labels.indexOf('rlnAngleRot');
      const ip = p.labels.indexOf('rlnAnglePsi');
      for (const row of p.rows) [row[ir], row[ip]] = [row[ip], row[ir]];
      fs.writeFileSync('particles.star', formatStar(blocks));
    });
    // measured: r 0.159, FSC 0.5 at 18.8 Å
    expect(bad.r).toBeLessThan(0.4);
    expect(bad.f05).toBeGreaterThan(good.f05 + 5);
  });

  it('images without CTF reconstruct well only when reconstructed without CTF', async () => {
    const d = path.join(tmp, 'e2e-noctf');
    simulateDataset({ ...E2E, noCtf: true }, d);
    const right = await run(d, { noCtf: true });
    const wrong = await run(d);
    // measured: right r 0.904, FSC 0.143 at 7.74 Å; wrong r 0.706, FSC 0.143 at 21.5 Å
    expect(right.r).toBeGreaterThan(0.85);
    expect(right.f0143).toBeLessThan(9);
    expect(wrong.f0143).toBeGreaterThan(right.f0143 + 8);
    expect(wrong.r).toBeLessThan(right.r - 0.1);
  });

  it('aberrations written to the optics table are corrected: better than with the coefficients zeroed', async () => {
    const d = path.join(tmp, 'e2e-zernike');
    // Trefoil-like odd (3,3) and astigmatism-like even (2,2) terms: phases of ~2 rad at 10 Å.
    simulateDataset({ ...E2E, evenZernike: [0, 0, 0, 200], oddZernike: [0, 0, 0, 0, 0, 2000] }, d);
    const corrected = await run(d);
    const zeroed = await run(d, {}, () => {
      const blocks = readStar('particles.star');
      const o = blocks[1];
      for (const label of ['rlnEvenZernike', 'rlnOddZernike']) {
        const j = o.labels.indexOf(label);
        expect(j).toBeGreaterThan(0);
        for (const row of o.rows) row[j] = row[j].replace(/[-0-9.e]+/g, '0');
      }
      fs.writeFileSync('particles.star', formatStar(blocks));
    });
    // measured: corrected FSC 0.143 at 8.41 Å, zeroed 10.02 Å (r 0.820 both: r lives at low frequency)
    expect(corrected.f0143).toBeLessThan(zeroed.f0143 - 1);
    expect(corrected.f05).toBeLessThanOrEqual(zeroed.f05);
  });

  let c6 = { r: 0, f05: 0, f0143: 0 };
  const c6dir = (): string => path.join(tmp, 'e2e-c6');
  it('a C6 particle reconstructs (without symmetry) like the conformance set V2', async () => {
    simulateDataset({ ...E2E, sym: 'C6' }, c6dir());
    c6 = await run(c6dir());
    // measured: r 0.776, FSC 0.143 at 9.22 Å (RELION on V2 without symmetry: r 0.666, 8.73 Å)
    expect(c6.r).toBeGreaterThan(0.7);
    expect(c6.f0143).toBeLessThan(10.5);
  });

  it('a C6 particle reconstructed with --sym C6 is better than without', async () => {
    const withSym = await run(c6dir(), { sym: 'C6' });
    // measured: without r 0.814, FSC 0.143 8.80 Å; with --sym C6 r 0.922, 8.16 Å
    expect(withSym.r).toBeGreaterThan(c6.r);
    expect(withSym.f0143).toBeLessThan(c6.f0143);
  });
});
