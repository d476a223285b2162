/**
 * Tilt-image frames for a worker's compute thread, one at a time: positioned reads of single
 * sections into preallocated buffers (no whole stack in memory), and a bounded cache of whole
 * frames per tomogram so that chunks of a tilt series the thread already holds read nothing.
 */
import fs from 'node:fs';
import os from 'node:os';
import { TomoError } from '../errors.js';
import { fsReason } from '../formats/atomicWrite.js';
import { firstNonFinite } from '../formats/finite.js';
import { MrcHeader, readMrcHeader, readMrcSections } from '../formats/mrc.js';
import type { FrameRef } from './messages.js';

const HOST_LE = os.endianness() === 'LE';

export class FrameReader {
  private readonly files = new Map<string, { fd: number; header: MrcHeader }>();

  /** Reads frame `ref` (W×H pixels) into `out`; checks that every pixel is finite. */
  readInto(ref: FrameRef, out: Float32Array, W: number, H: number, tomoName: string, frame: number): void {
    let f = this.files.get(ref.path);
    if (!f) {
      const header = readMrcHeader(ref.path);
      let fd: number;
      try {
        fd = fs.openSync(ref.path, 'r');
      } catch (e) {
        throw new TomoError(`cannot read MRC file ${ref.path}: ${fsReason(e)}`);
      }
      f = { fd, header };
      this.files.set(ref.path, f);
      // Per-tilt image files can be many: keep at most 64 open, closing the oldest.
      if (this.files.size > 64) {
        const [oldest, o] = this.files.entries().next().value as [string, { fd: number }];
        fs.closeSync(o.fd);
        this.files.delete(oldest);
      }
    }
    const h = f.header;
    if (h.nx !== W || h.ny !== H) {
      throw new TomoError(`${ref.path}: images are ${h.nx}×${h.ny} pixels, expected ${W}×${H} for ${tomoName}`);
    }
    if (ref.section < 0 || ref.section >= h.nz) {
      throw new TomoError(`${ref.path}: section ${ref.section} requested, but the file has sections 0 to ${h.nz - 1}`);
    }
    const pixels = W * H;
    if (h.mode === 2 && h.littleEndian === HOST_LE) {
      const bytes = new Uint8Array(out.buffer, out.byteOffset, pixels * 4);
      const pos = h.dataOffset + ref.section * pixels * 4;
      let done = 0;
      while (done < bytes.length) {
        let n: number;
        try {
          n = fs.readSync(f.fd, bytes, done, bytes.length - done, pos + done);
        } catch (e) {
          throw new TomoError(`cannot read MRC file ${ref.path}: ${fsReason(e)}`);
        }
        if (n === 0) throw new TomoError(`${ref.path}: truncated MRC file: section ${ref.section} ends beyond the end of the file`);
        done += n;
      }
    } else {
      out.set(readMrcSections(ref.path, ref.section, 1, h));
    }
    const i = firstNonFinite(out.subarray(0, pixels));
    if (i >= 0) {
      throw new TomoError(
        `${ref.path}: section ${ref.section + 1} (tilt ${frame + 1} of ${tomoName}) has a non-finite pixel (${out[i]}) at x=${i % W}, y=${Math.floor(i / W)}`,
      );
    }
  }

  close(): void {
    for (const f of this.files.values()) fs.closeSync(f.fd);
    this.files.clear();
  }
}

interface CachedTomo {
  frames: (Float32Array | null)[];
  /** Frames f < slots are kept; the others go through the scratch frame. */
  slots: number;
  lastUse: number;
}

/**
 * At most `capacity` cached frames over all tomograms (least recently used tomograms are dropped
 * first); frames that do not fit are read into one scratch buffer each time they are needed.
 */
export class FrameCache {
  private readonly tomos = new Map<number, CachedTomo>();
  private readonly scratch: Float32Array;
  private tick = 0;
  readonly reader = new FrameReader();

  constructor(
    private readonly capacity: number,
    framePixels: number,
  ) {
    this.scratch = new Float32Array(framePixels);
  }

  /** Work indices of the tomograms with cached frames. */
  holds(): number[] {
    return [...this.tomos.entries()].filter(([, t]) => t.frames.some((f) => f)).map(([w]) => w);
  }

  cachedFrames(): number {
    let n = 0;
    for (const t of this.tomos.values()) for (const f of t.frames) if (f) n++;
    return n;
  }

  /** Called before a chunk of tomogram `work` (F frames): makes room for it, dropping others. */
  begin(work: number, F: number): void {
    let t = this.tomos.get(work);
    if (!t) {
      t = { frames: new Array(F).fill(null), slots: 0, lastUse: 0 };
      this.tomos.set(work, t);
    }
    t.lastUse = ++this.tick;
    const want = Math.min(F, this.capacity);
    let others = this.cachedFrames() - t.frames.filter((f) => f).length;
    while (others > 0 && others + want > this.capacity) {
      let victim = -1;
      let oldest = Infinity;
      for (const [w, o] of this.tomos) if (w !== work && o.lastUse < oldest) ((oldest = o.lastUse), (victim = w));
      if (victim < 0) break;
      others -= this.tomos.get(victim)!.frames.filter((f) => f).length;
      this.tomos.delete(victim);
    }
    t.slots = Math.max(0, Math.min(want, this.capacity - others));
    for (let f = t.slots; f < F; f++) t.frames[f] = null;
  }

  /** Frame f of tomogram `work` (begin() must have been called). The scratch frame is overwritten by the next call. */
  get(work: number, f: number, ref: FrameRef, W: number, H: number, tomoName: string): Float32Array {
    const t = this.tomos.get(work)!;
    const have = t.frames[f];
    if (have) return have;
    if (f < t.slots) {
      const buf = new Float32Array(W * H);
      this.reader.readInto(ref, buf, W, H, tomoName, f);
      t.frames[f] = buf;
      return buf;
    }
    this.reader.readInto(ref, this.scratch, W, H, tomoName, f);
    return this.scratch;
  }

  clear(): void {
    this.tomos.clear();
    this.reader.close();
  }
}
