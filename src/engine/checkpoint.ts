/**
 * Exact resume: after each tomogram the running double-precision sums of both half sets and the
 * list of finished tomograms go to <o>/temp/ in one file, written atomically. `--only_do_unfinished`
 * reloads them (no float32 rounding, unlike RELION's checkpoints, [Q18]) if they were made by the
 * same options and inputs; the fingerprint says so.
 */
import fs from 'node:fs';
import path from 'node:path';
import { TomoError } from '../errors.js';
import { writeFileAtomic } from '../formats/atomicWrite.js';
import { Accumulator } from '../recon/backproject.js';
import { ReconstructOptions } from './options.js';
import { RunPlan } from './plan.js';

const MAGIC = 'TRCKPT01';

export interface Checkpoint {
  fingerprint: string;
  done: number[]; // tomogram indices (tomogram-set order) already summed
  halves: [Accumulator, Accumulator];
}

export function checkpointPath(outDir: string): string {
  return path.join(outDir, 'temp', 'tomorecon_sums.ckpt');
}

/** What the sums depend on: accumulation options and the identity (size, mtime) of every input file. */
export function runFingerprint(o: ReconstructOptions, plan: RunPlan): string {
  const files = new Set<string>([plan.tomograms.source, plan.particles.source]);
  if (plan.trajectories) files.add(plan.trajectories.source);
  for (const w of plan.work) for (const f of w.tomogram.frames) files.add(f.path);
  const stamps = [...files].sort().map((f) => {
    const st = fs.statSync(f);
    return [path.resolve(f), st.size, st.mtimeMs];
  });
  return JSON.stringify({
    b: o.b,
    bin: o.bin,
    noCtf: o.noCtf,
    noCircleCrop: o.noCircleCrop,
    cutoffFract: o.cutoffFract,
    whiten: o.whiten,
    files: stamps,
  });
}

export function writeCheckpoint(file: string, c: Checkpoint): void {
  const header = Buffer.from(JSON.stringify({ fingerprint: c.fingerprint, done: c.done }), 'utf8');
  const headerPadded = Math.ceil((16 + header.length) / 8) * 8;
  const head = Buffer.alloc(headerPadded);
  head.write(MAGIC, 0, 'latin1');
  head.writeUInt32LE(header.length, 8);
  header.copy(head, 16);
  // The sums are written straight from their arrays (little-endian hosts, as everywhere here).
  const chunks: Uint8Array[] = [head];
  for (const a of c.halves.flatMap((h) => [h.data, h.weight])) {
    const len = Buffer.alloc(8);
    len.writeDoubleLE(a.length);
    chunks.push(len, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeFileAtomic(file, chunks);
}

/** Null when there is no checkpoint; a TomoError when the file is damaged. */
export function readCheckpoint(file: string, s: number): Checkpoint | null {
  if (!fs.existsSync(file)) return null;
  const bad = (why: string): TomoError => new TomoError(`checkpoint ${file} is damaged (${why}); delete it to start again`);
  const buf = fs.readFileSync(file);
  if (buf.length < 16 || buf.toString('latin1', 0, 8) !== MAGIC) throw bad('not a tomorecon checkpoint');
  const hlen = buf.readUInt32LE(8);
  if (16 + hlen > buf.length) throw bad('truncated header');
  let meta: { fingerprint: string; done: number[] };
  try {
    meta = JSON.parse(buf.toString('utf8', 16, 16 + hlen));
  } catch {
    throw bad('unreadable header');
  }
  const sh = (s >> 1) + 1;
  const sizes = [2 * sh * s * s, sh * s * s, 2 * sh * s * s, sh * s * s];
  let off = Math.ceil((16 + hlen) / 8) * 8;
  const arrays: Float64Array[] = [];
  for (const n of sizes) {
    if (off + 8 + 8 * n > buf.length) throw bad('truncated data');
    if (buf.readDoubleLE(off) !== n) throw bad(`made for another box size than --b ${s}`);
    off += 8;
    const a = new Float64Array(n);
    Buffer.from(a.buffer).set(buf.subarray(off, off + 8 * n));
    arrays.push(a);
    off += 8 * n;
  }
  return {
    fingerprint: meta.fingerprint,
    done: meta.done,
    halves: [
      { data: arrays[0], weight: arrays[1] },
      { data: arrays[2], weight: arrays[3] },
    ],
  };
}
