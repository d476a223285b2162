/**
 * Everything one particle contributes to the half-set accumulators (numerics.md §4–§5):
 * per visible frame, extraction → CTF·dose premultiplication → insertion.
 * Runs identically in the main thread and in worker threads; all buffers are preallocated.
 */
import { Mat3, Mat4, Vec3, applyPoint4 } from '../geometry/matrix.js';
import { isVisible } from '../geometry/projection.js';
import { ctfConstants, drawCtf, CtfConstants, CtfParams } from '../physics/ctf.js';
import { SINE_LIMIT } from '../physics/sine.js';
import { doseExponents, doseXRanges, drawDoseWeightsFrom } from '../physics/dose.js';
import { AberrationTables, applyOddAberration } from '../physics/aberrations.js';
import { Deformation, addDeformation, fourierFrequencies } from '../geometry/deformation.js';
import { Accumulator } from './backproject.js';
import { WasmArena, insertSlice } from './wasmArena.js';
import { ExtractionWorkspace, extractFrameSpectrum, extractionArenaBytes } from './extract.js';

/** Options that are the same for every tomogram of a run. */
export interface KernelOptions {
  s: number; // output box (binned pixels)
  s0: number; // extraction box (unbinned pixels) = round(bin·s)
  bin: number;
  doCtf: boolean;
  circleCrop: boolean;
  cutoffFraction: number;
  outputPixelSize: number; // p_out = px(tomogram 0)·bin
  whiten: boolean;
  /** Aberration tables per optics group (index = particle optics group); empty when none. */
  aberrations: AberrationTables[];
}

/** The serialisable part of a tomogram the kernel needs (sent to worker threads). */
export interface TomogramGeometry {
  name: string;
  imageW: number;
  imageH: number;
  frameCount: number;
  pixelSize: number;
  hand: number;
  defocusSlope: number;
  bPerDose: number;
  centre: Vec3;
  projections: Mat4[];
  ctf: CtfParams[];
  dose: number[];
  deformation: Deformation | null;
}

/** Per-tomogram tables shared by all particles of the tomogram. */
export interface TomogramTables {
  geometry: TomogramGeometry;
  stack: Float32Array; // W×H×F pixels
  doseWeights: Float32Array; // F × (sh×s)
  xRanges: Int32Array; // F × s
  /** --whiten: g per frame, F × (sh×s); null otherwise. */
  noiseWeights: Float32Array | null;
  /** Frequencies of a Fourier deformation model (computed once per tomogram). */
  deformationFrequencies: Float64Array | undefined;
  /** Per-frame views into the tables above, and the depth of the tomogram centre (no per-call allocation). */
  frameDose: Float32Array[];
  frameRanges: Int32Array[];
  frameNoise: (Float32Array | null)[];
  centreDepth: Float64Array;
  binnedPixelSize: number;
}

export function buildTomogramTables(
  opts: KernelOptions,
  geometry: TomogramGeometry,
  stack: Float32Array,
  noiseWeights: Float32Array | null,
): TomogramTables {
  const { s } = opts;
  const sh = (s >> 1) + 1;
  const pb = geometry.pixelSize * opts.bin;
  const F = geometry.frameCount;
  const doseWeights = new Float32Array(F * sh * s);
  const xRanges = new Int32Array(F * s);
  const q = doseExponents(s, pb, geometry.bPerDose);
  for (let f = 0; f < F; f++) {
    const dw = doseWeights.subarray(f * sh * s, (f + 1) * sh * s);
    drawDoseWeightsFrom(q, geometry.dose[f], dw);
    doseXRanges(s, dw, opts.cutoffFraction, xRanges.subarray(f * s, (f + 1) * s));
  }
  const d = geometry.deformation;
  const deformationFrequencies = d?.type === 'Fourier' ? fourierFrequencies(d.gridX, d.gridY, d.imageW, d.imageH) : undefined;
  const frameDose: Float32Array[] = [];
  const frameRanges: Int32Array[] = [];
  const frameNoise: (Float32Array | null)[] = [];
  const centreDepth = new Float64Array(F);
  for (let f = 0; f < F; f++) {
    frameDose.push(doseWeights.subarray(f * sh * s, (f + 1) * sh * s));
    frameRanges.push(xRanges.subarray(f * s, (f + 1) * s));
    frameNoise.push(noiseWeights ? noiseWeights.subarray(f * sh * s, (f + 1) * sh * s) : null);
    centreDepth[f] = applyPoint4(geometry.projections[f], geometry.centre)[2];
  }
  return {
    geometry,
    stack,
    doseWeights,
    xRanges,
    noiseWeights,
    deformationFrequencies,
    frameDose,
    frameRanges,
    frameNoise,
    centreDepth,
    binnedPixelSize: pb,
  };
}

/**
 * One particle, packed as numbers so that many particles travel in one Float64Array:
 * [half, optics group, pos.x, pos.y, pos.z, A (9, row-major), hasTrajectory, traj (3·F)].
 */
const REC_HEADER = 15;
export function particleRecordLength(frameCount: number): number {
  return REC_HEADER + 3 * frameCount;
}

export function packParticle(
  out: Float64Array,
  offset: number,
  half: number,
  optics: number,
  pos: Vec3,
  A: Mat3,
  trajectoryPixels: Float64Array | null,
  frameCount: number,
): void {
  out[offset] = half;
  out[offset + 1] = optics;
  out[offset + 2] = pos[0];
  out[offset + 3] = pos[1];
  out[offset + 4] = pos[2];
  out.set(A, offset + 5);
  out[offset + 14] = trajectoryPixels ? 1 : 0;
  if (trajectoryPixels) out.set(trajectoryPixels.subarray(0, 3 * frameCount), offset + REC_HEADER);
}

/** Per-thread buffers for the particle kernel. */
export class KernelWorkspace {
  readonly extraction: ExtractionWorkspace;
  readonly slice: Float32Array; // interleaved complex sh×s
  readonly sliceWeight: Float32Array; // sh×s
  readonly ctf: Float32Array; // sh×s
  /** With an arena: the current tilt's dose weights (sh×s) and row limits (s), for its CTF·dose kernel. */
  readonly doseRow: Float32Array | null;
  readonly rangeRow: Int32Array | null;
  /**
   * With an arena: a copy there of each optics group's even-aberration phase table (keyed by the
   * table), with its largest |γ0| (for the kernel's range test).
   */
  readonly evenInArena = new Map<Float64Array, { table: Float64Array; maxAbs: number }>();
  readonly insertion = new Float64Array(9);
  /** Projected particle centre of the current frame (x, y). */
  readonly centre: [number, number] = [0, 0];
  readonly ctfConstants = {} as CtfConstants;
  readonly ctfParams: CtfParams = { defocusU: 0, defocusV: 0, defocusAngle: 0, voltage: 0, cs: 0, q0: 0, bfactor: 0, scale: 1, phaseShift: 0 };

  /**
   * With an arena the slice buffers live in it, and slices are inserted with its WebAssembly
   * into accumulators that live there too (wasmArena.ts); otherwise with backprojectSlice.
   */
  constructor(
    readonly opts: KernelOptions,
    readonly arena: WasmArena | null = null,
  ) {
    const sh = (opts.s >> 1) + 1;
    this.extraction = new ExtractionWorkspace(opts.s, opts.s0, arena);
    this.slice = arena ? arena.f32(2 * sh * opts.s) : new Float32Array(2 * sh * opts.s);
    this.sliceWeight = arena ? arena.f32(sh * opts.s) : new Float32Array(sh * opts.s);
    this.ctf = new Float32Array(sh * opts.s);
    this.doseRow = arena ? arena.f32(sh * opts.s) : null;
    this.rangeRow = arena ? arena.i32(opts.s) : null;
    if (arena) {
      for (const { even } of opts.aberrations) {
        if (!even || this.evenInArena.has(even)) continue;
        const table = arena.f64(even.length);
        table.set(even);
        let maxAbs = 0;
        for (let i = 0; i < even.length; i++) maxAbs = Math.max(maxAbs, Math.abs(even[i]));
        this.evenInArena.set(even, { table, maxAbs });
      }
    }
  }

  /**
   * Bytes an arena needs for a workspace's slice buffers, dose row, extraction and `evenTables`
   * even-aberration tables (evenAberrationTables; with alignment).
   */
  static arenaBytes(s: number, s0: number, evenTables = 0): number {
    const sh = (s >> 1) + 1;
    return 16 * sh * s + 4 * s + 384 + extractionArenaBytes(s0) + evenTables * (8 * sh * s + 64);
  }

  /** Bytes held by one workspace, for the memory estimate (`evenTables`: as arenaBytes). */
  static bytes(s: number, s0: number, evenTables = 0): number {
    const sh = (s >> 1) + 1;
    const sh0 = (s0 >> 1) + 1;
    return 8 * s0 * s0 * 2 + 1 * s0 * s0 + 16 * sh0 * s0 + 4 * sh * s * 5 + 4 * s + evenTables * 8 * sh * s;
  }
}

/** Optics groups with even aberrations (each a table a workspace copies into its arena). */
export function evenAberrationTables(opts: KernelOptions): number {
  return new Set(opts.aberrations.map((a) => a.even).filter((e) => e !== null)).size;
}

/** Sign applied to all data (flip_value = true in RELION). */
const SIGN = -1;

/**
 * The CTF·dose premultiplication of processParticleFrame with the arena's WebAssembly (the same
 * values bit for bit, in two thirds of the time: wasmArena.ctfDose), when the slice lives there and
 * the CTF is one that kernel draws: no B-factor (RELION's tomography tables have none), and a
 * phase γ within sine()'s exact range at every frequency of the box (always, for real optics: a
 * few hundred radians at most). The tilt's dose weights and row limits are copied into the arena
 * first (33 kB at box 128). False, nothing done, otherwise.
 */
function ctfDoseInArena(ws: KernelWorkspace, k: CtfConstants, s: number, pixelSize: number, dose: Float32Array, ranges: Int32Array, aberr: AberrationTables | undefined): boolean {
  if (!ws.arena || !ws.doseRow || !ws.rangeRow || k.k4 !== 0) return false;
  const even = aberr?.even ? ws.evenInArena.get(aberr.even) : null;
  if (even === undefined) return false;
  const inv = 1 / (s * pixelSize);
  // |γ| ≤ |k1|·(|axx|X² + 2|axy||X||Y| + |ayy|Y²) + |k2|·u⁴ + |k5| + |k3| with |X| ≤ (sh − 1)·inv, |Y| ≤ (s/2)·inv.
  const X = (s >> 1) * inv;
  const Y = (s / 2) * inv;
  const u2 = X * X + Y * Y;
  let bound = Math.abs(k.k1) * (Math.abs(k.axx) * X * X + 2 * Math.abs(k.axy) * X * Y + Math.abs(k.ayy) * Y * Y) + Math.abs(k.k2) * u2 * u2 + Math.abs(k.k5) + Math.abs(k.k3);
  if (even) bound += even.maxAbs;
  if (!(bound <= SINE_LIMIT / 2)) return false;
  ws.doseRow.set(dose);
  ws.rangeRow.set(ranges);
  return ws.arena.ctfDose(ws.slice, ws.sliceWeight, ws.doseRow, ws.rangeRow, even?.table ?? null, s, inv, k);
}

/**
 * Back-projects the particle stored at `rec[offset…]` into `halves[half]`, every frame.
 * Returns the number of frames in which the particle was visible.
 */
export function processParticle(
  ws: KernelWorkspace,
  t: TomogramTables,
  rec: Float64Array,
  offset: number,
  halves: Accumulator[],
): number {
  const g = t.geometry;
  let visible = 0;
  for (let f = 0; f < g.frameCount; f++) {
    if (processParticleFrame(ws, t, rec, offset, f, halves, t.stack, f * g.imageW * g.imageH)) visible++;
  }
  return visible;
}

/**
 * One frame of one particle: extraction from `pixels` (frame f of the tilt series starts at
 * `pixelOffset`; a caller holding one frame at a time passes it with offset 0), CTF·dose
 * premultiplication, aberration and noise weighting, insertion. Returns false (and does nothing)
 * when the particle is not visible in the frame.
 */
export function processParticleFrame(
  ws: KernelWorkspace,
  t: TomogramTables,
  rec: Float64Array,
  offset: number,
  f: number,
  halves: Accumulator[],
  pixels: Float32Array,
  pixelOffset: number,
): boolean {
  const { opts } = ws;
  const { s, bin } = opts;
  const sh = (s >> 1) + 1;
  const g = t.geometry;
  const half = rec[offset];
  const aberr: AberrationTables | undefined = opts.aberrations[rec[offset + 1]];
  const px = rec[offset + 2];
  const py = rec[offset + 3];
  const pz = rec[offset + 4];
  const A = offset + 5; // A(i, j) = rec[A + 3i + j]
  const hasTraj = rec[offset + 14] === 1;
  const trajAt = offset + REC_HEADER + 3 * f;
  const visRadius = s / 2; // binned box in unbinned pixels ([Q7])
  const scaleRatio = opts.outputPixelSize / t.binnedPixelSize;
  const P = ws.slice;
  const Wt = ws.sliceWeight;
  const M = ws.insertion;
  const acc = halves[half];
  const Pf = g.projections[f];
  const tx = hasTraj ? rec[trajAt] : px;
  const ty = hasTraj ? rec[trajAt + 1] : py;
  const tz = hasTraj ? rec[trajAt + 2] : pz;
  const c = ws.centre;
  c[0] = Pf[0] * tx + Pf[1] * ty + Pf[2] * tz + Pf[3];
  c[1] = Pf[4] * tx + Pf[5] * ty + Pf[6] * tz + Pf[7];
  // Deformations move the projected point (visibility and extraction), not the CTF depth.
  if (g.deformation) addDeformation(g.deformation, f, c[0], c[1], c, t.deformationFrequencies);
  if (!isVisible(c[0], c[1], g.imageW, g.imageH, visRadius)) return false;
  extractFrameSpectrum(ws.extraction, pixels, pixelOffset, g.imageW, g.imageH, c[0], c[1], bin, opts.circleCrop, P);

  const ranges = t.frameRanges[f];
  if (opts.doCtf) {
    // Defocus at the particle's depth uses the static position ([Q22]).
    const depth = Pf[8] * px + Pf[9] * py + Pf[10] * pz + Pf[11] - t.centreDepth[f];
    const dz = g.hand * g.pixelSize * g.defocusSlope * depth;
    const base = g.ctf[f];
    const cp = ws.ctfParams;
    Object.assign(cp, base);
    cp.defocusU = base.defocusU + dz;
    cp.defocusV = base.defocusV + dz;
    const k = ctfConstants(cp, g.name, ws.ctfConstants);
    if (!ctfDoseInArena(ws, k, s, t.binnedPixelSize, t.frameDose[f], ranges, aberr)) {
      drawCtf(k, s, t.binnedPixelSize, ws.ctf, aberr?.even, ranges);
      const dw = t.frameDose[f];
      for (let y = 0; y < s; y++) {
        const R = ranges[y];
        const row = y * sh;
        for (let x = 0; x < sh; x++) {
          const i = row + x;
          if (x < R) {
            const cw = Math.fround(Math.fround(SIGN * ws.ctf[i]) * dw[i]);
            P[2 * i] *= cw;
            P[2 * i + 1] *= cw;
            Wt[i] = cw * cw;
          } else {
            P[2 * i] = 0;
            P[2 * i + 1] = 0;
            Wt[i] = 0;
          }
        }
      }
    }
  } else {
    // --no_ctf: weight 1, data negated, no dose weighting nor range zeroing ([Q3]).
    for (let i = 0; i < P.length; i++) P[i] = -P[i];
    Wt.fill(1);
  }
  if (aberr?.odd) applyOddAberration(P, aberr.odd);
  const nw = t.frameNoise[f];
  if (nw) {
    // Data and weight both multiplied by g ([Q5]); with --no_ctf the weight is g once, not
    // compounded over particles ([Q4], fixed) because Wt is rebuilt for every frame above.
    for (let i = 0; i < nw.length; i++) {
      P[2 * i] *= nw[i];
      P[2 * i + 1] *= nw[i];
      Wt[i] *= nw[i];
    }
  }
  // Insertion matrix M = scaleRatio · P3_f · A.
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      M[i * 3 + j] = scaleRatio * (Pf[i * 4] * rec[A + j] + Pf[i * 4 + 1] * rec[A + 3 + j] + Pf[i * 4 + 2] * rec[A + 6 + j]);
    }
  }
  insertSlice(ws.arena, acc, s, P, Wt, M, ranges[0]);
  return true;
}
