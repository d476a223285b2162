/**
 * Radiation-damage weights (Damage::weightImage, numerics.md §3.1) and the per-row frequency
 * ranges derived from them (Tomogram::findDoseXRanges, §3.2).
 */

/** Grant & Grigorieff critical exposure constants (damage.cpp). */
const CRIT_A = 0.245;
const CRIT_B = -1.665;
const CRIT_C = 2.81;

/**
 * Dose weight of one half-grid image (sh×s, float) for pre-exposure `dose` (e/Å²), pixel size
 * `pixelSize` (Å, binned). `bPerDose > 0` selects the B-factor-per-dose model.
 */
export function drawDoseWeights(s: number, pixelSize: number, dose: number, bPerDose: number, out: Float32Array): Float32Array {
  const sh = (s >> 1) + 1;
  const inv = 1 / (s * pixelSize);
  for (let y = 0; y < s; y++) {
    const yy = y < s / 2 ? y : y - s;
    const ky = yy * inv;
    for (let x = 0; x < sh; x++) {
      const kx = x * inv;
      const k2 = kx * kx + ky * ky;
      let w: number;
      if (bPerDose > 0) {
        w = Math.exp((-bPerDose * dose * k2) / 4);
      } else {
        // At k = 0, k^-1.665 is +Infinity and the weight is exactly 1, as in RELION.
        const k = Math.sqrt(k2);
        w = Math.exp((-0.5 * dose) / (CRIT_A * Math.pow(k, CRIT_B) + CRIT_C));
      }
      out[y * sh + x] = w;
    }
  }
  return out;
}

/**
 * drawDoseWeights for every frame of a tomogram at the cost of one exp per pixel and frame: the
 * weight is exp(D·q(k)) with q = −0.5/(a·k^b + c) (or −B·k²/4), which does not depend on the
 * dose D, so the pow is paid once per tomogram (doseExponents) instead of once per frame. Equal
 * to drawDoseWeights to float rounding (test: within one float32 step).
 */
export function doseExponents(s: number, pixelSize: number, bPerDose: number): Float64Array {
  const sh = (s >> 1) + 1;
  const inv = 1 / (s * pixelSize);
  const q = new Float64Array(sh * s);
  for (let y = 0; y < s; y++) {
    const yy = y < s / 2 ? y : y - s;
    const ky = yy * inv;
    for (let x = 0; x < sh; x++) {
      const kx = x * inv;
      const k2 = kx * kx + ky * ky;
      // At k = 0 the denominator is +Infinity and q = −0: the weight is exactly 1, as in RELION.
      q[y * sh + x] = bPerDose > 0 ? (-bPerDose * k2) / 4 : -0.5 / (CRIT_A * Math.pow(Math.sqrt(k2), CRIT_B) + CRIT_C);
    }
  }
  return q;
}

/** The dose weights of one frame with pre-exposure `dose` from doseExponents' table. */
export function drawDoseWeightsFrom(q: Float64Array, dose: number, out: Float32Array): Float32Array {
  for (let i = 0; i < q.length; i++) out[i] = Math.exp(dose * q[i]);
  return out;
}

/**
 * R(y) for one frame: 1 + the largest x < sh with x ≤ sqrt(⌊s²/4⌋ − σ(y)²) and dw(x,y) > cutoff,
 * or 0 if there is none. The scan does not stop at the first failure (findDoseXRanges).
 */
export function doseXRanges(s: number, dw: Float32Array, cutoff: number, out: Int32Array): Int32Array {
  const sh = (s >> 1) + 1;
  const s2over4 = Math.floor((s * s) / 4);
  for (let y = 0; y < s; y++) {
    const yy = y < s / 2 ? y : y - s;
    const rad = s2over4 - yy * yy;
    let r = 0;
    if (rad >= 0) {
      const xmax = Math.sqrt(rad);
      for (let x = 0; x < sh && x <= xmax; x++) {
        if (dw[y * sh + x] > cutoff) r = x + 1;
      }
    }
    out[y] = r;
  }
  return out;
}
