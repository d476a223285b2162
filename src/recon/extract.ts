/**
 * From tilt-series pixels to the particle's 2-D spectrum in one frame (numerics.md §5.1):
 * square extraction with edge replication, soft circular crop, centred forward FFT (Both
 * normalisation), Fourier binning, and the sub-pixel shift that puts the projected particle
 * centre at the origin.
 */
import { rfft2 } from './fft.js';
import type { WasmArena } from './wasmArena.js';
import { WasmRfft, wasmRfftBytes } from './wasmFft.js';

/** RELION's EDGE_FALLOFF: width of the soft edge of the circular crop, unbinned pixels. */
export const EDGE_FALLOFF = 5;

/** Per-thread scratch buffers for extraction of an s0×s0 square binned to s×s. */
export class ExtractionWorkspace {
  readonly s: number;
  readonly s0: number;
  readonly sh: number;
  readonly sh0: number;
  /** s0×s0 real square, already rotated so that pixel (s0/2, s0/2) sits at the origin. */
  readonly square: Float64Array;
  /** (s0/2+1)×s0 complex spectrum of `square` (interleaved). */
  readonly spectrum0: Float64Array;
  /** Circular-crop mask and "outside" flags, depending only on s0. */
  readonly mask: Float64Array;
  readonly outside: Uint8Array;
  /**
   * The crop circle's inside pixels of square row y are the run [inLo[y], inHi[y]) (a disc meets
   * a row in one run); the outside ones are the rest of the row.
   */
  readonly inLo: Int32Array;
  readonly inHi: Int32Array;
  /** Source column of each square column, clamped to the image (edge replication), per call. */
  readonly columns: Int32Array;
  /** exp(2πi·t·k/n) along x (sh) and along y (s), interleaved, per call. */
  readonly phaseX: Float64Array;
  readonly phaseY: Float64Array;
  /** The square's FFT in WebAssembly (square and spectrum in the arena), or null: rfft2. */
  readonly fft: WasmRfft | null;

  /** With an arena, the square and its spectrum live there and are transformed with its WebAssembly FFT (s0 even, with no prime factor above 5). */
  constructor(s: number, s0: number, arena: WasmArena | null = null) {
    this.s = s;
    this.s0 = s0;
    this.sh = (s >> 1) + 1;
    this.sh0 = (s0 >> 1) + 1;
    const fft = arena ? WasmRfft.create(arena, s0, s0) : null;
    this.fft = fft;
    this.square = fft ? arena!.f64(s0 * s0) : new Float64Array(s0 * s0);
    this.spectrum0 = fft ? arena!.f64(2 * this.sh0 * s0) : new Float64Array(2 * this.sh0 * s0);
    this.mask = new Float64Array(s0 * s0);
    this.outside = new Uint8Array(s0 * s0);
    this.columns = new Int32Array(s0);
    this.phaseX = new Float64Array(2 * this.sh);
    this.phaseY = new Float64Array(2 * s);
    const m = Math.floor(s0 / 2);
    const R = m;
    for (let y = 0; y < s0; y++) {
      for (let x = 0; x < s0; x++) {
        const r = Math.sqrt((x - m) * (x - m) + (y - m) * (y - m));
        const i = y * s0 + x;
        this.outside[i] = r > R ? 1 : 0;
        this.mask[i] = r < R - EDGE_FALLOFF ? 1 : r < R ? 0.5 - 0.5 * Math.cos((Math.PI * (R - r)) / EDGE_FALLOFF) : 0;
      }
    }
    this.inLo = new Int32Array(s0);
    this.inHi = new Int32Array(s0);
    for (let y = 0; y < s0; y++) {
      let lo = 0;
      while (lo < s0 && this.outside[y * s0 + lo]) lo++;
      let hi = lo;
      while (hi < s0 && !this.outside[y * s0 + hi]) hi++;
      this.inLo[y] = lo;
      this.inHi[y] = hi;
      for (let x = hi; x < s0; x++) if (!this.outside[y * s0 + x]) throw new Error(`crop circle row ${y} is not one run`);
    }
  }
}

/** Arena bytes an ExtractionWorkspace takes for extraction box s0 (square, spectrum, FFT). */
export function extractionArenaBytes(s0: number): number {
  return 8 * s0 * s0 + 16 * ((s0 >> 1) + 1) * s0 + wasmRfftBytes(s0, s0) + 2 * 64;
}

/** C++ std::round: half away from zero. */
export function roundHalfAway(v: number): number {
  return v < 0 ? -Math.round(-v) : Math.round(v);
}

/**
 * Extracts the particle's spectrum in one frame into `out` (interleaved complex, sh×s).
 * `stack` holds W×H×F float pixels; `frameOffset` = f·W·H; (cx, cy) = projected particle centre.
 */
export function extractFrameSpectrum(
  ws: ExtractionWorkspace,
  stack: Float32Array,
  frameOffset: number,
  imageW: number,
  imageH: number,
  cx: number,
  cy: number,
  bin: number,
  circleCrop: boolean,
  out: Float32Array,
): void {
  const { s0, s, sh, sh0, square, mask, inLo, inHi } = ws;
  const half0 = Math.floor(s0 / 2);
  const ox = roundHalfAway(cx) - half0;
  const oy = roundHalfAway(cy) - half0;

  // Clamped source columns once per call (edge replication), not per pixel.
  const cols = ws.columns;
  for (let x = 0; x < s0; x++) cols[x] = clamp(x + ox, imageW - 1);
  // No column is clamped: rows are read straight (the common case, away from the image edges).
  const inside = ox >= 0 && ox + s0 <= imageW;

  // Mean of the pixels outside the crop circle (double accumulation, row by row and left to
  // right, as a scan of the whole square would add them), needed before masking.
  let mu = 0;
  if (circleCrop) {
    let sum = 0;
    let n = 0;
    for (let y = 0; y < s0; y++) {
      const rowOff = frameOffset + clamp(y + oy, imageH - 1) * imageW;
      const lo = inLo[y];
      const hi = inHi[y];
      for (let x = 0; x < lo; x++) sum += stack[rowOff + cols[x]];
      for (let x = hi; x < s0; x++) sum += stack[rowOff + cols[x]];
      n += lo + s0 - hi;
    }
    mu = n > 0 ? sum / n : 0;
  }
  // Write I(x,y) to J((x − s0/2) mod s0, (y − s0/2) mod s0): the centred FFT's index rotation,
  // done as two contiguous runs per row (x < h goes to x + s0 − h, the rest to x − h).
  const h = s0 >> 1;
  for (let y = 0; y < s0; y++) {
    const rowOff = frameOffset + clamp(y + oy, imageH - 1) * imageW;
    const jRow = ((y + s0 - h) % s0) * s0;
    const m = y * s0;
    const left = jRow + s0 - h;
    const right = jRow - h;
    if (circleCrop && inside) {
      // RELION stores the masked square as float.
      const src = rowOff + ox;
      for (let x = 0; x < h; x++) square[left + x] = Math.fround(mask[m + x] * (stack[src + x] - mu));
      for (let x = h; x < s0; x++) square[right + x] = Math.fround(mask[m + x] * (stack[src + x] - mu));
    } else if (circleCrop) {
      for (let x = 0; x < h; x++) square[left + x] = Math.fround(mask[m + x] * (stack[rowOff + cols[x]] - mu));
      for (let x = h; x < s0; x++) square[right + x] = Math.fround(mask[m + x] * (stack[rowOff + cols[x]] - mu));
    } else {
      for (let x = 0; x < h; x++) square[left + x] = stack[rowOff + cols[x]];
      for (let x = h; x < s0; x++) square[right + x] = stack[rowOff + cols[x]];
    }
  }
  const spec = ws.fft ? ws.fft.forward(square, ws.spectrum0) : rfft2(square, s0, s0, ws.spectrum0);
  const norm = 1 / s0; // Both normalisation of an s0² transform

  // Fourier binning by truncation (FourierCrop_fftwHalfStack) then the sub-pixel shift (shiftStack).
  const scale = bin !== 1 ? norm / bin : norm;
  const w = 2 * (sh - 1);
  const px = (cx - ox) / bin;
  const py = (cy - oy) / bin;
  const tx = px - Math.floor(w / 2);
  const ty = py - Math.floor(s / 2);
  // exp(iφ) with φ = 2π(tx·x/w + ty·σ(y)/s) is separable: one complex product per pixel instead
  // of a cos and a sin (RELION evaluates φ whole; the difference is at float rounding level).
  const { phaseX, phaseY } = ws;
  for (let x = 0; x < sh; x++) {
    const a = (2 * Math.PI * tx * x) / w;
    phaseX[2 * x] = Math.cos(a);
    phaseX[2 * x + 1] = Math.sin(a);
  }
  for (let y = 0; y < s; y++) {
    const a = (2 * Math.PI * ty * (y < s / 2 ? y : y - s)) / s;
    phaseY[2 * y] = Math.cos(a);
    phaseY[2 * y + 1] = Math.sin(a);
  }
  for (let y = 0; y < s; y++) {
    const srcY = bin !== 1 ? (y < s / 2 ? y : y - s + s0) : y;
    const cyr = phaseY[2 * y];
    const cyi = phaseY[2 * y + 1];
    const src = 2 * srcY * sh0;
    const dst = 2 * y * sh;
    for (let x = 0; x < sh; x++) {
      const re = Math.fround(spec[src + 2 * x] * scale);
      const im = Math.fround(spec[src + 2 * x + 1] * scale);
      const cxr = phaseX[2 * x];
      const cxi = phaseX[2 * x + 1];
      const c = cxr * cyr - cxi * cyi;
      const sn = cxr * cyi + cxi * cyr;
      out[dst + 2 * x] = c * re - sn * im;
      out[dst + 2 * x + 1] = c * im + sn * re;
    }
  }
}

function clamp(i: number, max: number): number {
  return i < 0 ? 0 : i > max ? max : i;
}
