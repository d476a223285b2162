/**
 * The reduction of a commit round (docs/distributed.md): the coordinator is the root of a binary
 * tree of the participants in heap order: workers 0 and 1 send to the coordinator, worker i's
 * children are 2i + 2 and 2i + 3. A "volume set" (data and weight of each half set, float64) is
 * cut into segments of equal length; each node, segment by segment, adds its children's segments
 * to its own and passes the sum up, so the transfer is pipelined and every node holds only a few
 * segments besides its own accumulators. (The coordinator takes two children like any inner node:
 * one level less than a tree whose root worker forwards everything, and, with two workers, no
 * worker-to-worker hop at all.)
 */
import type { LayoutRuns } from '../recon/insertion.js';

// The pieces the back-projection can write (recon/insertion.ts) are what a round moves.
export { insertionRadius, insertionRuns } from '../recon/insertion.js';
export type { LayoutRuns } from '../recon/insertion.js';

export interface TreeNode {
  worker: string;
  /** Parent worker, or null for the coordinator's children. */
  parent: string | null;
  children: string[];
}

export function binaryTree(participants: string[]): TreeNode[] {
  return participants.map((worker, i) => ({
    worker,
    parent: i < 2 ? null : participants[(i - 2) >> 1],
    children: [2 * i + 2, 2 * i + 3].filter((c) => c < participants.length).map((c) => participants[c]),
  }));
}

/** The workers that send to the coordinator. */
export function coordinatorChildren(participants: string[]): string[] {
  return participants.slice(0, 2);
}

/** Number of levels of workers in the tree: 2^(d+1) − 2 workers fit in d levels. */
export function treeDepth(n: number): number {
  return n <= 0 ? 0 : Math.ceil(Math.log2(n + 2)) - 1;
}

/**
 * A volume set as one logical array: the concatenation of `arrays` (h1.data, h1.weight,
 * h2.data, h2.weight — or only half 1 without half sets), or, with `runs`, of those pieces of
 * them only. Segment k covers [k·seg, min(total, (k+1)·seg)) of that logical array.
 */
export class SetLayout {
  readonly total: number;
  readonly segments: number;
  private readonly runs: LayoutRuns;
  /** Where each run starts in the packed array. */
  private readonly runStarts: Float64Array;

  constructor(
    readonly lengths: number[],
    readonly segmentDoubles: number,
    runs?: LayoutRuns,
  ) {
    this.runs = runs ?? {
      count: lengths.length,
      a: Int32Array.from(lengths.map((_, a) => a)),
      from: new Float64Array(lengths.length),
      len: Int32Array.from(lengths),
    };
    const r = this.runs;
    this.runStarts = new Float64Array(r.count);
    let t = 0;
    for (let i = 0; i < r.count; i++) {
      if (!(r.a[i] >= 0 && r.a[i] < lengths.length && r.from[i] >= 0 && r.from[i] + r.len[i] <= lengths[r.a[i]])) {
        throw new RangeError(`layout run ${i} lies outside array ${r.a[i]}`);
      }
      this.runStarts[i] = t;
      t += r.len[i];
    }
    this.total = t;
    this.segments = Math.max(1, Math.ceil(t / segmentDoubles));
  }

  segmentLength(k: number): number {
    return Math.min(this.total, (k + 1) * this.segmentDoubles) - k * this.segmentDoubles;
  }

  /** Calls fn(arrayIndex, from, to, offsetInSegment) for the pieces of the arrays that segment k covers. */
  pieces(k: number, fn: (a: number, from: number, to: number, at: number) => void): void {
    const lo = k * this.segmentDoubles;
    const hi = lo + this.segmentLength(k);
    const starts = this.runStarts;
    // The last run starting at or before lo (binary search), then on while runs start below hi.
    let i = 0;
    let j = starts.length - 1;
    while (i < j) {
      const m = (i + j + 1) >> 1;
      if (starts[m] <= lo) i = m;
      else j = m - 1;
    }
    const r = this.runs;
    for (; i < starts.length && starts[i] < hi; i++) {
      const from = Math.max(lo, starts[i]);
      const to = Math.min(hi, starts[i] + r.len[i]);
      if (from < to) fn(r.a[i], r.from[i] + from - starts[i], r.from[i] + to - starts[i], from - lo);
    }
  }

  /**
   * out = segment k of arrays. (Loops rather than set(subarray()): a segment is hundreds of short
   * runs, and a view per run was garbage for the collector in every round.)
   */
  copyOut(arrays: Float64Array[], k: number, out: Float64Array): void {
    this.pieces(k, (a, from, to, at) => {
      const src = arrays[a];
      for (let i = from, j = at; i < to; i++, j++) out[j] = src[i];
    });
  }

  /** out += segment k of arrays. */
  addOut(arrays: Float64Array[], k: number, out: Float64Array): void {
    this.pieces(k, (a, from, to, at) => {
      const src = arrays[a];
      for (let i = from, j = at; i < to; i++, j++) out[j] += src[i];
    });
  }

  /** Segment k of arrays as a view (no copy) when it lies within one array, else null. */
  view(arrays: Float64Array[], k: number): Float64Array | null {
    let v: Float64Array | null = null;
    let n = 0;
    this.pieces(k, (a, from, to) => {
      n++;
      v = arrays[a].subarray(from, to);
    });
    return n === 1 ? v : null;
  }

  /** segment k of out = segment k of arrays + src. */
  sumIn(out: Float64Array[], arrays: Float64Array[], k: number, src: Float64Array): void {
    this.pieces(k, (a, from, to, at) => {
      const dst = out[a];
      const x = arrays[a];
      for (let i = from, j = at; i < to; i++, j++) dst[i] = x[i] + src[j];
    });
  }

  /**
   * segment k of out = segment k of arrays + (a + b), or a + b without `arrays`: sumIn after
   * addSegment(a, b), the same additions in the same order, in one pass over the segments.
   */
  sum2In(out: Float64Array[], arrays: Float64Array[] | null, k: number, a: Float64Array, b: Float64Array): void {
    this.pieces(k, (arr, from, to, at) => {
      const dst = out[arr];
      if (arrays) {
        const x = arrays[arr];
        for (let i = from, j = at; i < to; i++, j++) dst[i] = x[i] + (a[j] + b[j]);
      } else {
        for (let i = from, j = at; i < to; i++, j++) dst[i] = a[j] + b[j];
      }
    });
  }

  /** segment k of arrays = src. */
  copyIn(arrays: Float64Array[], k: number, src: Float64Array): void {
    this.pieces(k, (a, from, to, at) => {
      const dst = arrays[a];
      for (let i = from, j = at; i < to; i++, j++) dst[i] = src[j];
    });
  }
}

export function addSegment(dst: Float64Array, src: Float64Array): void {
  for (let i = 0; i < dst.length; i++) dst[i] += src[i];
}
