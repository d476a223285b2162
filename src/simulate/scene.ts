/**
 * Simulated acquisition metadata: tilt series (angles, shifts, CTF, dose-symmetric pre-exposure),
 * particle placement, orientations, origin shifts and motion. Every number that goes into a STAR
 * file is rounded to the 6 decimals it is written with *before* it is used for rendering, so the
 * images agree exactly with what a reader of the files computes.
 */
import { TomoError } from '../errors.js';
import { Mat3, Mat4, Vec3, apply3, applyPoint4, eulerToMatrix, identity3, mul3 } from '../geometry/matrix.js';
import { projectionFromAngles } from '../geometry/projection.js';
import { Rng } from './random.js';
import { SimulationParams, tiltCount, tiltsPerSide } from './params.js';
import { r6 } from './model.js';

export interface SimFrame {
  index: number;
  nominalTilt: number;
  xTilt: number;
  yTilt: number;
  zRot: number;
  xShiftAngst: number;
  yShiftAngst: number;
  defocusU: number;
  defocusV: number;
  defocusAngle: number;
  preExposure: number;
  ctfScale: number;
  projection: Mat4;
}

export interface SimTomogram {
  index: number;
  name: string;
  size: Vec3;
  /** Floating halves (Tomogram::centre). */
  centre: Vec3;
  imageW: number;
  imageH: number;
  hand: number;
  defocusSlope: number;
  nominalTiltAxis: number;
  /** rlnTomoNominalDefocus, µm, negative = underfocus as written by RELION's importer. */
  nominalDefocus: number;
  frames: SimFrame[];
}

export interface SimParticle {
  name: string;
  tomo: number;
  /** 1-based index within its tomogram. */
  number: number;
  randomSubset: 1 | 2;
  opticsGroup: number;
  coordAngst: Vec3;
  originAngst: Vec3;
  angles: Vec3;
  subtomoAngles: Vec3 | null;
  /** A = A_sub · A_part: particle frame → tomogram axes. */
  rotation: Mat3;
  /** Static position (decentred tomogram pixels), as ParticleSet::getPosition computes it. */
  position: Vec3;
  /** Motion shifts (Å, tomogram axes), 3 per frame, or null without motion. */
  shifts: Float64Array | null;
}

export interface Scene {
  tomograms: SimTomogram[];
  particles: SimParticle[];
}

/**
 * Acquisition rank of each frame (frames sorted by tilt angle, odd count, 0° in the middle):
 * dose-symmetric (Hagen) order 0°, +step, then groups of two alternating sides: −1, −2, +2, +3,
 * −3, −4, … steps (as in the conformance data).
 */
export function doseSymmetricRanks(frameCount: number): number[] {
  const centre = (frameCount - 1) >> 1;
  const order = [centre];
  let pos = centre + 1;
  let neg = centre - 1;
  if (pos < frameCount) order.push(pos++);
  let side = -1;
  while (order.length < frameCount) {
    for (let k = 0; k < 2; k++) {
      if (side < 0 && neg >= 0) order.push(neg--);
      else if (side > 0 && pos < frameCount) order.push(pos++);
    }
    side = -side;
  }
  const rank = new Array<number>(frameCount);
  order.forEach((f, r) => (rank[f] = r));
  return rank;
}

export function tomoName(t: number): string {
  return `TS_${String(t + 1).padStart(2, '0')}`;
}

function makeTomogram(rng: Rng, p: SimulationParams, t: number): SimTomogram {
  const F = tiltCount(p);
  const half = tiltsPerSide(p);
  const ranks = doseSymmetricRanks(F);
  const size: Vec3 = [p.tomoSize[0], p.tomoSize[1], p.tomoSize[2]];
  const [W, H] = p.image;
  const axis = 85;
  const zOffset = rng.uniform(-1, 1);
  const tiltOffset = rng.uniform(-1.5, 1.5);
  const xTiltMean = rng.uniform(-0.1, 0.1);
  const astigAngle = rng.uniform(-90, 90);
  const frames: SimFrame[] = [];
  for (let f = 0; f < F; f++) {
    const nominalTilt = r6((f - half) * p.tiltStep);
    const defocusU = r6(p.defocus + p.astig / 2 + 150 * rng.normal());
    const a = {
      xTilt: r6(xTiltMean + 0.02 * rng.normal()),
      yTilt: r6(nominalTilt + tiltOffset + 0.04 * rng.normal()),
      zRot: r6(axis + zOffset + 0.1 * rng.normal()),
      xShiftAngst: r6(rng.uniform(-20, 20)),
      yShiftAngst: r6(rng.uniform(-20, 20)),
    };
    frames.push({
      index: f,
      nominalTilt,
      ...a,
      defocusU,
      defocusV: r6(defocusU - p.astig),
      defocusAngle: r6(astigAngle + 3 * rng.normal()),
      preExposure: r6(ranks[f] * p.dose),
      ctfScale: p.ctfScaleCos ? r6(Math.cos((nominalTilt * Math.PI) / 180)) : 1,
      projection: projectionFromAngles(a, p.pixel, W, H, size),
    });
  }
  return {
    index: t,
    name: tomoName(t),
    size,
    centre: [size[0] / 2, size[1] / 2, size[2] / 2],
    imageW: W,
    imageH: H,
    hand: p.hand,
    defocusSlope: p.defocusSlope,
    nominalTiltAxis: axis,
    nominalDefocus: r6(-p.defocus / 1e4),
    frames,
  };
}

/** Uniformly random rotation as RELION Euler angles (degrees). */
function randomAngles(rng: Rng): Vec3 {
  return [
    r6(rng.uniform(-180, 180)),
    r6((Math.acos(rng.uniform(-1, 1)) * 180) / Math.PI),
    r6(rng.uniform(-180, 180)),
  ];
}

/**
 * Smooth motion (Å) as a function of the nominal tilt: two sinusoids per axis (z at 15 % of the
 * in-plane amplitude), zero at the first exposure (pre-exposure 0). |shift| ≤ 2.8·amp per axis.
 */
function makeMotion(rng: Rng, tomo: SimTomogram, amp: number): Float64Array {
  const F = tomo.frames.length;
  const out = new Float64Array(3 * F);
  const ref = tomo.frames.reduce((best, fr) => (fr.preExposure < best.preExposure ? fr : best), tomo.frames[0]);
  const span = Math.max(1e-9, Math.max(...tomo.frames.map((fr) => Math.abs(fr.nominalTilt))));
  for (let a = 0; a < 3; a++) {
    const A = a < 2 ? amp : 0.15 * amp;
    const w1 = rng.uniform(0.5, 1.5) * Math.PI, p1 = rng.uniform(0, 2 * Math.PI), c1 = rng.uniform(0.5, 1);
    const w2 = rng.uniform(1.5, 3.0) * Math.PI, p2 = rng.uniform(0, 2 * Math.PI), c2 = rng.uniform(0, 0.4);
    const fn = (tilt: number): number => A * (c1 * Math.sin((w1 * tilt) / span + p1) + c2 * Math.sin((w2 * tilt) / span + p2));
    const f0 = fn(ref.nominalTilt);
    for (let f = 0; f < F; f++) out[3 * f + a] = r6(fn(tomo.frames[f].nominalTilt) - f0);
  }
  return out;
}

/** Largest |shift| a motion trajectory can have, in pixels. */
function motionBoundPx(p: SimulationParams): number {
  return p.motion ? (2 * 1.4 * p.motionAmp) / p.pixel : 0;
}

export function makeScene(rng: Rng, p: SimulationParams): Scene {
  const tomograms: SimTomogram[] = [];
  for (let t = 0; t < p.tomos; t++) tomograms.push(makeTomogram(rng, p, t));
  const particles: SimParticle[] = [];
  const half = p.box / 2;
  const margin = half + 2 + motionBoundPx(p);
  const minDist = p.minDistance > 0 ? p.minDistance : p.box;
  for (const tomo of tomograms) {
    const placed: Vec3[] = [];
    const [w0, h0, d0] = tomo.size;
    const maxAttempts = 2000 * p.particles + 10000;
    let attempts = 0;
    while (placed.length < p.particles) {
      if (++attempts > maxAttempts) {
        throw new TomoError(
          `cannot place ${p.particles} particles ${minDist} px apart in tomogram ${tomo.name} ` +
            `(${w0}×${h0}×${d0}) so that they stay ${margin.toFixed(1)} px inside the ${tomo.imageW}×${tomo.imageH} images ` +
            `at every tilt: use fewer --particles, a smaller --box or --min-distance, or a larger --tomo-size/--image`,
        );
      }
      const cand: Vec3 = [rng.uniform(half, w0 - half), rng.uniform(half, h0 - half), rng.uniform(half, d0 - half)];
      if (placed.some((q) => (q[0] - cand[0]) ** 2 + (q[1] - cand[1]) ** 2 + (q[2] - cand[2]) ** 2 < minDist * minDist)) continue;
      const inside = tomo.frames.every((fr) => {
        const q = applyPoint4(fr.projection, cand);
        return q[0] > margin && q[0] < tomo.imageW - margin && q[1] > margin && q[1] < tomo.imageH - margin;
      });
      if (inside) placed.push(cand);
    }
    placed.forEach((cand, k) => {
      const angles = randomAngles(rng);
      const subtomoAngles = p.subtomoAngles ? randomAngles(rng) : null;
      const origin: Vec3 = [
        r6(rng.uniform(-p.originShifts, p.originShifts)),
        r6(rng.uniform(-p.originShifts, p.originShifts)),
        r6(rng.uniform(-p.originShifts, p.originShifts)),
      ];
      const sub = subtomoAngles ? eulerToMatrix(...subtomoAngles) : identity3();
      const rotation = mul3(sub, eulerToMatrix(...angles));
      // pos = coord/px + centre − A_sub·origin/px  ⇒  coord = (pos − centre)·px + A_sub·origin.
      const so = apply3(sub, origin);
      const coordAngst: Vec3 = [0, 1, 2].map((a) => r6((cand[a] - tomo.centre[a]) * p.pixel + so[a])) as Vec3;
      // Recompute the position from the rounded values exactly as the reader does.
      const q: Vec3 = [0, 1, 2].map((a) => coordAngst[a] / p.pixel + tomo.centre[a]) as Vec3;
      const o = apply3(sub, origin);
      const position: Vec3 = [q[0] - o[0] / p.pixel, q[1] - o[1] / p.pixel, q[2] - o[2] / p.pixel];
      particles.push({
        name: `${tomo.name}/${k + 1}`,
        tomo: tomo.index,
        number: k + 1,
        randomSubset: k % 2 === 0 ? 1 : 2,
        opticsGroup: tomo.index + 1,
        coordAngst,
        originAngst: origin,
        angles,
        subtomoAngles,
        rotation,
        position,
        shifts: p.motion ? makeMotion(rng, tomo, p.motionAmp) : null,
      });
    });
  }
  return { tomograms, particles };
}
