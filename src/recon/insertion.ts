/**
 * Where the back-projection can write in an accumulator: inside the sphere of the largest
 * maxFreq it is called with. Everything outside stays zero, so passes over accumulators (the
 * fold of thread sums, a commit round's transfer, clearing) need only visit these pieces: 55 %
 * of a volume set at every box size.
 */
import type { Accumulator } from './backproject.js';

/**
 * Pieces of a set of arrays (a volume set: data and weight per half): piece i is `len[i]`
 * doubles of array `a[i]` from index `from[i]`, in this order; everything else is known to be
 * zero. Typed arrays: at box 512 there are ~830 000 pieces (20 MB), at 128 ~53 000.
 */
export interface LayoutRuns {
  count: number;
  a: Int32Array;
  from: Float64Array;
  len: Int32Array;
}

/**
 * The largest radius (in voxels) the back-projection writes at for box s: its maxFreq is the
 * first row's dose-weighted x range (doseXRanges), at most ⌊√⌊s²/4⌋⌋ + 1.
 */
export function insertionRadius(s: number): number {
  return Math.floor(Math.sqrt(Math.floor((s * s) / 4))) + 1;
}

/**
 * The pieces of a volume set (per half: data, interleaved complex, then weight; half layout
 * sh×s×s) that the back-projection can write: on the (y, z) lines with yy² + zz² ≤ R², the
 * voxels x ≤ ⌊√(R² − yy² − zz²)⌋ (backprojectSlice's own bounds with maxFreq ≤ R =
 * insertionRadius(s)). About half of the volume set at every box size (a sphere in the half box),
 * so a commit round moves half the bytes.
 */
export function insertionRuns(s: number, halves: number): LayoutRuns {
  const sh = (s >> 1) + 1;
  const R = insertionRadius(s);
  const xr = new Int32Array(s * s).fill(-1); // per line z·s + y: last x inside, or −1
  let lines = 0;
  for (let z = 0; z < s; z++) {
    const zz = z < s / 2 ? z : z - s;
    for (let y = 0; y < s; y++) {
      const yy = y < s / 2 ? y : y - s;
      const rad = R * R - yy * yy - zz * zz;
      if (rad < 0) continue;
      xr[z * s + y] = Math.min(sh - 1, Math.trunc(Math.sqrt(rad)));
      lines++;
    }
  }
  const count = 2 * halves * lines;
  const runs: LayoutRuns = { count, a: new Int32Array(count), from: new Float64Array(count), len: new Int32Array(count) };
  let i = 0;
  for (let arr = 0; arr < 2 * halves; arr++) {
    const width = arr % 2 === 0 ? 2 : 1; // data: complex; weight: real
    for (let line = 0; line < s * s; line++) {
      if (xr[line] < 0) continue;
      runs.a[i] = arr;
      runs.from[i] = width * line * sh;
      runs.len[i] = width * (xr[line] + 1);
      i++;
    }
  }
  return runs;
}

/**
 * sums += part over the pieces of `sphere` (insertionRuns for one half: data, weight), then
 * part = 0 there when `clear`. `copy`: sums are zero, so part is copied (no read of sums).
 */
export function foldSphere(sums: Accumulator, part: Accumulator, sphere: LayoutRuns, copy: boolean, clear: boolean): void {
  for (let r = 0; r < sphere.count; r++) {
    const d = sphere.a[r] === 0 ? sums.data : sums.weight;
    const p = sphere.a[r] === 0 ? part.data : part.weight;
    const from = sphere.from[r];
    const to = from + sphere.len[r];
    if (copy) for (let i = from; i < to; i++) d[i] = p[i];
    else for (let i = from; i < to; i++) d[i] += p[i];
    if (clear) p.fill(0, from, to);
  }
}

/** arrays = 0 over the pieces of `runs` (insertionRuns for the same arrays, in their order). */
export function clearRuns(arrays: Float64Array[], runs: LayoutRuns): void {
  for (let r = 0; r < runs.count; r++) arrays[runs.a[r]].fill(0, runs.from[r], runs.from[r] + runs.len[r]);
}
