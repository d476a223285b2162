/**
 * The file format of checkpointed sums, shared by the local engine's and the coordinator's
 * checkpoints: 8-byte magic, 4-byte header length, a JSON header (padded to 8 bytes), then the
 * four float64 arrays (data and weight of each half set), each preceded by its length as a
 * float64. Written atomically straight from the arrays (no copy of the sums), read back with
 * positioned reads into the arrays (no whole-file buffer), little-endian as everywhere here.
 */
import fs from 'node:fs';
import path from 'node:path';
import { TomoError } from '../errors.js';
import { fsReason, writeFileAtomic, writeFileAtomicDeferred } from '../formats/atomicWrite.js';
import { Accumulator } from '../recon/backproject.js';
import { wasmVolume } from '../recon/wasmVolume.js';

function sumsFileChunks(file: string, magic: string, meta: unknown, halves: [Accumulator, Accumulator]): Uint8Array[] {
  const header = Buffer.from(JSON.stringify(meta), 'utf8');
  const head = Buffer.alloc(Math.ceil((16 + header.length) / 8) * 8);
  head.write(magic, 0, 'latin1');
  head.writeUInt32LE(header.length, 8);
  header.copy(head, 16);
  const chunks: Uint8Array[] = [head];
  for (const a of halves.flatMap((h) => [h.data, h.weight])) {
    const len = Buffer.alloc(8);
    len.writeDoubleLE(a.length);
    chunks.push(len, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  return chunks;
}

export function writeSumsFile(file: string, magic: string, meta: unknown, halves: [Accumulator, Accumulator]): void {
  writeFileAtomic(file, sumsFileChunks(file, magic, meta, halves));
}

/**
 * writeSumsFile whose fsync and rename are left to libuv's thread pool: the sums are written (and
 * free to be changed) when it returns; the promise settles once the file is in place.
 */
export function writeSumsFileDeferred(file: string, magic: string, meta: unknown, halves: [Accumulator, Accumulator]): Promise<void> {
  return writeFileAtomicDeferred(file, sumsFileChunks(file, magic, meta, halves));
}

/**
 * Null when there is no file; a TomoError when it is damaged, of another kind, or made for another
 * box size. `wasmData`: the data sums are read into WebAssembly memories of their own
 * (wasmVolume.ts), where a finalisation pool's threads transform them in place. `fingerprint`:
 * the header is compared first; when it has another (a checkpoint of other options, maybe of
 * another box), the sums are not read and `halves` is null.
 */
export function readSumsFile<M extends { fingerprint: string }>(
  file: string,
  magic: string,
  s: number,
  wasmData = false,
  fingerprint?: string,
): { meta: M; halves: [Accumulator, Accumulator] | null } | null {
  if (!fs.existsSync(file)) return null;
  const bad = (why: string): TomoError => new TomoError(`checkpoint ${file} is damaged (${why}); delete it to start again`);
  const unreadable = (e: unknown): TomoError => new TomoError(`cannot read the checkpoint ${file}: ${fsReason(e)}`);
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw unreadable(e);
  }
  try {
    const size = fs.fstatSync(fd).size;
    const read = (target: Uint8Array, pos: number): void => {
      let done = 0;
      while (done < target.length) {
        let n: number;
        try {
          n = fs.readSync(fd, target, done, Math.min(1 << 30, target.length - done), pos + done);
        } catch (e) {
          throw unreadable(e);
        }
        if (n === 0) throw bad('truncated');
        done += n;
      }
    };
    if (size < 16) throw bad('not a tomorecon checkpoint');
    const head = Buffer.alloc(16);
    read(head, 0);
    if (head.toString('latin1', 0, 8) !== magic) throw bad('not this kind of tomorecon checkpoint');
    const hlen = head.readUInt32LE(8);
    if (16 + hlen > size) throw bad('truncated header');
    const hb = Buffer.alloc(hlen);
    read(hb, 16);
    let meta: M;
    try {
      meta = JSON.parse(hb.toString('utf8')) as M;
    } catch {
      throw bad('unreadable header');
    }
    if (fingerprint !== undefined && meta.fingerprint !== fingerprint) return { meta, halves: null };
    const sh = (s >> 1) + 1;
    const sizes = [2 * sh * s * s, sh * s * s, 2 * sh * s * s, sh * s * s];
    let off = Math.ceil((16 + hlen) / 8) * 8;
    const arrays: Float64Array[] = [];
    const len = Buffer.alloc(8);
    sizes.forEach((n, i) => {
      if (off + 8 + 8 * n > size) throw bad('truncated data');
      read(len, off);
      if (len.readDoubleLE(0) !== n) throw bad(`made for another box size than --b ${s}`);
      off += 8;
      const a = (wasmData && i % 2 === 0 ? wasmVolume(s) : null) ?? new Float64Array(n);
      read(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), off);
      arrays.push(a);
      off += 8 * n;
    });
    return {
      meta,
      halves: [
        { data: arrays[0], weight: arrays[1] },
        { data: arrays[2], weight: arrays[3] },
      ],
    };
  } finally {
    fs.closeSync(fd);
  }
}
