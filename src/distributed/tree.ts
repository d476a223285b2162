/**
 * The reduction of a commit round (docs/distributed.md): participants form a binary tree in heap
 * order; worker 0 is the root and sends to the coordinator. A "volume set" (data and weight of
 * each half set, float64) is cut into segments of equal length; each node, segment by segment,
 * adds its children's segments to its own and passes the sum up, so the transfer is pipelined
 * and every node holds only a few segments besides its own accumulators.
 */
export interface TreeNode {
  worker: string;
  /** Parent worker, or null for the root (which sends to the coordinator). */
  parent: string | null;
  children: string[];
}

export function binaryTree(participants: string[]): TreeNode[] {
  return participants.map((worker, i) => ({
    worker,
    parent: i === 0 ? null : participants[(i - 1) >> 1],
    children: [2 * i + 1, 2 * i + 2].filter((c) => c < participants.length).map((c) => participants[c]),
  }));
}

/** Number of levels of the tree (1 for a single worker). */
export function treeDepth(n: number): number {
  return n <= 0 ? 0 : Math.floor(Math.log2(n)) + 1;
}

/**
 * A volume set as one logical array: the concatenation of `arrays` (h1.data, h1.weight,
 * h2.data, h2.weight — or only half 1 without half sets). Segment k covers
 * [k·seg, min(total, (k+1)·seg)).
 */
export class SetLayout {
  readonly total: number;
  readonly segments: number;
  private readonly starts: number[];

  constructor(
    readonly lengths: number[],
    readonly segmentDoubles: number,
  ) {
    this.starts = [];
    let t = 0;
    for (const n of lengths) {
      this.starts.push(t);
      t += n;
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
    for (let a = 0; a < this.lengths.length; a++) {
      const s = this.starts[a];
      const e = s + this.lengths[a];
      const from = Math.max(lo, s);
      const to = Math.min(hi, e);
      if (from < to) fn(a, from - s, to - s, from - lo);
    }
  }

  /** out = segment k of arrays. */
  copyOut(arrays: Float64Array[], k: number, out: Float64Array): void {
    this.pieces(k, (a, from, to, at) => out.set(arrays[a].subarray(from, to), at));
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

  /** segment k of arrays = src. */
  copyIn(arrays: Float64Array[], k: number, src: Float64Array): void {
    this.pieces(k, (a, from, to, at) => arrays[a].set(src.subarray(at, at + (to - from)), from));
  }
}

export function addSegment(dst: Float64Array, src: Float64Array): void {
  for (let i = 0; i < dst.length; i++) dst[i] += src[i];
}
