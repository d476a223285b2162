/**
 * Tilt-image rendering (conventions as in the conformance data's truth.json):
 *
 *   image = −IFT[ scale · CTF · dose · FT(line-integral projection) ] + N(0, σ²)
 *
 * Each particle is rendered per tilt into a square patch centred on its projected (moving)
 * centre: the line integral of an isotropic 3-D Gaussian blob is a 2-D Gaussian with the same σ
 * and amplitude a·σ·√(2π), at the projection of the blob centre q = pos + shift_f/px + A·c_b.
 * The patch is Fourier transformed, multiplied by the tilt's CTF with the depth-corrected
 * defocus (ΔfU/V += hand·px·slope·depth(pos), static position, as RELION) and by the dose weight
 * for the tilt's pre-exposure, transformed back and subtracted from the tilt image.
 * Aberrations (rlnEvenZernike/rlnOddZernike) enter as RELION models them: the even phase is added
 * to the CTF phase, and the spectrum is multiplied by exp(+i·φ_odd), which RELION's correction
 * exp(−i·φ_odd) undoes.
 * The patch is large enough to hold the CTF delocalisation (see autoPatchSize).
 */
import { applyPoint4 } from '../geometry/matrix.js';
import { depthOffset } from '../geometry/projection.js';
import { ctfConstants, drawCtf, electronWavelength } from '../physics/ctf.js';
import { drawDoseWeights } from '../physics/dose.js';
import { AberrationTables, aberrationTables } from '../physics/aberrations.js';
import { irfft2, rfft2 } from '../recon/fft.js';
import { ParticleModel } from './model.js';
import { SimulationParams } from './params.js';
import { SimParticle, SimTomogram } from './scene.js';

const SQRT_2PI = Math.sqrt(2 * Math.PI);
/** Blobs are drawn out to this many σ (exp(−12.5) ≈ 4e−6 of the peak beyond). */
const CUTOFF_SIGMAS = 5;

function isSmooth(n: number): boolean {
  for (const f of [2, 3, 5]) while (n % f === 0) n /= f;
  return n === 1;
}

/** Smallest even 2·3·5-smooth number ≥ n. */
export function nextFftSize(n: number): number {
  let m = Math.max(2, Math.ceil(n));
  if (m % 2) m++;
  while (!isSmooth(m)) m += 2;
  return m;
}

/**
 * Patch side: box + 2 × (CTF delocalisation at Nyquist for the largest defocus that can occur,
 * λ·Δf·k + λ³·Cs·k³ with k = 1/(2px)) + motion margin + 8, rounded up to an FFT-friendly size.
 */
export function autoPatchSize(p: SimulationParams): number {
  let deloc = 0;
  if (!p.noCtf) {
    const lambda = electronWavelength(p.voltage);
    const k = 1 / (2 * p.pixel);
    const [w0, h0, d0] = p.tomoSize;
    const maxDepthA = 0.5 * Math.sqrt(w0 * w0 + h0 * h0 + d0 * d0) * p.pixel * p.defocusSlope;
    const dfMax = p.defocus + p.astig / 2 + 600 + maxDepthA;
    deloc = (lambda * dfMax * k + lambda ** 3 * p.cs * 1e7 * k ** 3) / p.pixel;
  }
  const motion = p.motion ? (2.8 * p.motionAmp) / p.pixel : 0;
  return nextFftSize(p.box + 2 * Math.ceil(deloc + motion) + 8);
}

/** Renders particles into tilt images; owns all scratch buffers (nothing is allocated per pixel). */
export class Renderer {
  readonly P: number;
  private readonly sh: number;
  private readonly patch: Float64Array;
  private readonly spec: Float64Array;
  private readonly filtered: Float64Array;
  private readonly ctf: Float32Array;
  private readonly g1: Float64Array;
  private readonly g2: Float64Array;
  private readonly doseCache = new Map<number, Float32Array>();
  private readonly aberrations: AberrationTables;

  constructor(
    private readonly p: SimulationParams,
    private readonly model: ParticleModel,
    patchSize: number,
  ) {
    const P = patchSize;
    this.P = P;
    this.sh = (P >> 1) + 1;
    this.patch = new Float64Array(P * P);
    this.spec = new Float64Array(2 * this.sh * P);
    this.filtered = new Float64Array(P * P);
    this.ctf = new Float32Array(this.sh * P);
    this.g1 = new Float64Array(P);
    this.g2 = new Float64Array(P);
    this.aberrations = aberrationTables(
      p.evenZernike.length > 0 ? p.evenZernike : null,
      p.oddZernike.length > 0 ? p.oddZernike : null,
      P,
      p.pixel,
    );
  }

  private doseWeights(preExposure: number): Float32Array {
    let w = this.doseCache.get(preExposure);
    if (!w) {
      w = drawDoseWeights(this.P, this.p.pixel, preExposure, 0, new Float32Array(this.sh * this.P));
      this.doseCache.set(preExposure, w);
    }
    return w;
  }

  /**
   * Subtracts the filtered projection of `particle` in frame `f` from `image` (one W×H frame,
   * x fastest) and returns the variance of that noiseless signal in the box×box window at the
   * particle's projected centre (for the SNR definition).
   */
  renderFrame(tomo: SimTomogram, f: number, particle: SimParticle, image: Float32Array, imageOffset: number): number {
    const { P, sh, patch, spec, filtered, g1, g2, model, p } = this;
    const frame = tomo.frames[f];
    const px = p.pixel;
    const Pm = frame.projection;
    // Projected centre of the (moving) particle.
    const pos = particle.position;
    const sx = particle.shifts ? particle.shifts[3 * f] / px : 0;
    const sy = particle.shifts ? particle.shifts[3 * f + 1] / px : 0;
    const sz = particle.shifts ? particle.shifts[3 * f + 2] / px : 0;
    const c = applyPoint4(Pm, [pos[0] + sx, pos[1] + sy, pos[2] + sz]);
    const ox = Math.floor(c[0] + 0.5) - P / 2;
    const oy = Math.floor(c[1] + 0.5) - P / 2;
    const lx0 = c[0] - ox;
    const ly0 = c[1] - oy;
    // M = P3·A maps particle-frame offsets to image offsets (x, y) and depth.
    const A = particle.rotation;
    const m00 = Pm[0] * A[0] + Pm[1] * A[3] + Pm[2] * A[6];
    const m01 = Pm[0] * A[1] + Pm[1] * A[4] + Pm[2] * A[7];
    const m02 = Pm[0] * A[2] + Pm[1] * A[5] + Pm[2] * A[8];
    const m10 = Pm[4] * A[0] + Pm[5] * A[3] + Pm[6] * A[6];
    const m11 = Pm[4] * A[1] + Pm[5] * A[4] + Pm[6] * A[7];
    const m12 = Pm[4] * A[2] + Pm[5] * A[5] + Pm[6] * A[8];

    patch.fill(0);
    const nb = model.sigmas.length;
    for (let b = 0; b < nb; b++) {
      const cx = model.centres[3 * b], cy = model.centres[3 * b + 1], cz = model.centres[3 * b + 2];
      const u = lx0 + m00 * cx + m01 * cy + m02 * cz;
      const v = ly0 + m10 * cx + m11 * cy + m12 * cz;
      const s = model.sigmas[b];
      const amp = model.amplitudes[b] * s * SQRT_2PI;
      const inv = 1 / (2 * s * s);
      const r = CUTOFF_SIGMAS * s;
      const x0 = Math.max(0, Math.ceil(u - r)), x1 = Math.min(P - 1, Math.floor(u + r));
      const y0 = Math.max(0, Math.ceil(v - r)), y1 = Math.min(P - 1, Math.floor(v + r));
      for (let x = x0; x <= x1; x++) g1[x] = Math.exp(-(x - u) * (x - u) * inv);
      for (let y = y0; y <= y1; y++) g2[y] = amp * Math.exp(-(y - v) * (y - v) * inv);
      for (let y = y0; y <= y1; y++) {
        const gy = g2[y];
        const row = y * P;
        for (let x = x0; x <= x1; x++) patch[row + x] += gy * g1[x];
      }
    }

    // Filter: −scale·CTF·dose (scale is part of the CTF), applied on the half-complex grid.
    rfft2(patch, P, P, spec);
    const dose = p.noDose ? null : this.doseWeights(frame.preExposure);
    let ctf: Float32Array | null = null;
    if (!p.noCtf) {
      const dz = tomo.hand * px * tomo.defocusSlope * depthOffset(Pm, pos, tomo.centre);
      const k = ctfConstants(
        {
          defocusU: frame.defocusU + dz,
          defocusV: frame.defocusV + dz,
          defocusAngle: frame.defocusAngle,
          voltage: p.voltage,
          cs: p.cs,
          q0: p.q0,
          bfactor: 0,
          scale: frame.ctfScale,
          phaseShift: 0,
        },
        `${tomo.name} tilt ${f + 1}`,
      );
      ctf = drawCtf(k, P, px, this.ctf, this.aberrations.even);
    }
    const norm = -1 / (P * P); // unnormalised FFT pair, and the contrast sign
    const n = sh * P;
    const odd = this.aberrations.odd;
    for (let i = 0; i < n; i++) {
      let w = norm;
      if (ctf) w *= ctf[i];
      else w *= frame.ctfScale;
      if (dose) w *= dose[i];
      const re = spec[2 * i] * w;
      const im = spec[2 * i + 1] * w;
      if (odd) {
        spec[2 * i] = re * odd[2 * i] - im * odd[2 * i + 1];
        spec[2 * i + 1] = re * odd[2 * i + 1] + im * odd[2 * i];
      } else {
        spec[2 * i] = re;
        spec[2 * i + 1] = im;
      }
    }
    irfft2(spec, P, P, filtered);

    // Signal statistics in the box×box window around round(c) (patch centre).
    const half = p.box / 2;
    let sum = 0;
    let sum2 = 0;
    for (let y = P / 2 - half; y < P / 2 + half; y++) {
      for (let x = P / 2 - half; x < P / 2 + half; x++) {
        const v = filtered[y * P + x];
        sum += v;
        sum2 += v * v;
      }
    }
    const cnt = p.box * p.box;
    const mean = sum / cnt;
    const variance = sum2 / cnt - mean * mean;

    // Add into the image (clipped at its borders).
    const W = tomo.imageW, H = tomo.imageH;
    const ya = Math.max(0, -oy), yb = Math.min(P, H - oy);
    const xa = Math.max(0, -ox), xb = Math.min(P, W - ox);
    for (let y = ya; y < yb; y++) {
      const src = y * P;
      const dst = imageOffset + (oy + y) * W + ox;
      for (let x = xa; x < xb; x++) image[dst + x] += filtered[src + x];
    }
    return variance;
  }
}
