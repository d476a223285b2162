/**
 * The coordinator's checkpoint: the committed double-precision sums of both half sets and the
 * ids of the committed chunks (with the worker and round that committed each), guarded by a
 * fingerprint of the options, the inputs and the chunk plan. Written after every commit round
 * to <o>/temp/ under a temporary name, fsync'ed and renamed, streaming the arrays (no copy of
 * the sums is made, so the coordinator's memory cap holds while writing).
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { TomoError } from '../errors.js';
import { fsReason } from '../formats/atomicWrite.js';
import { Accumulator } from '../recon/backproject.js';
import { CommittedRecord } from './ledger.js';

const MAGIC = 'TRDIST01';

export interface DistributedCheckpointMeta {
  fingerprint: string;
  chunkCount: number;
  committed: CommittedRecord[];
  /** Commit rounds so far over all coordinator processes of this run. */
  rounds: number;
  /** Coordinator processes (epochs) that worked on this output, oldest first. */
  epochs: { epoch: string; started: string }[];
  /** Commit rounds (committed and aborted) of every epoch, for the run report. */
  roundLog: unknown[];
}

export interface DistributedCheckpoint {
  meta: DistributedCheckpointMeta;
  halves: [Accumulator, Accumulator];
}

export function distributedCheckpointPath(outDir: string): string {
  return path.join(outDir, 'temp', 'tomorecon_distributed.ckpt');
}

function writeAll(fd: number, bytes: Uint8Array): void {
  const max = 1 << 30;
  let done = 0;
  while (done < bytes.length) done += fs.writeSync(fd, bytes, done, Math.min(max, bytes.length - done));
}

export function writeDistributedCheckpoint(file: string, meta: DistributedCheckpointMeta, halves: [Accumulator, Accumulator]): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  const header = Buffer.from(JSON.stringify(meta), 'utf8');
  const headerPadded = Math.ceil((16 + header.length) / 8) * 8;
  const head = Buffer.alloc(headerPadded);
  head.write(MAGIC, 0, 'latin1');
  head.writeUInt32LE(header.length, 8);
  header.copy(head, 16);
  let fd: number | null = null;
  try {
    fd = fs.openSync(tmp, 'wx');
    writeAll(fd, head);
    const len = Buffer.alloc(8);
    for (const a of halves.flatMap((h) => [h.data, h.weight])) {
      len.writeDoubleLE(a.length, 0);
      writeAll(fd, len);
      writeAll(fd, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = null;
    fs.renameSync(tmp, file);
  } catch (e) {
    if (fd !== null) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw new TomoError(`cannot write the checkpoint ${file}: ${fsReason(e)}`);
  }
}

/** Null when there is none; a TomoError when it is damaged or made for another box size. */
export function readDistributedCheckpoint(file: string, s: number): DistributedCheckpoint | null {
  if (!fs.existsSync(file)) return null;
  const bad = (why: string): TomoError => new TomoError(`checkpoint ${file} is damaged (${why}); delete it to start again`);
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const read = (target: Uint8Array, pos: number): void => {
      let done = 0;
      while (done < target.length) {
        const n = fs.readSync(fd, target, done, Math.min(1 << 30, target.length - done), pos + done);
        if (n === 0) throw bad('truncated');
        done += n;
      }
    };
    if (size < 16) throw bad('not a tomorecon checkpoint');
    const head = Buffer.alloc(16);
    read(head, 0);
    if (head.toString('latin1', 0, 8) !== MAGIC) throw bad('not a tomorecon distributed checkpoint');
    const hlen = head.readUInt32LE(8);
    if (16 + hlen > size) throw bad('truncated header');
    const hb = Buffer.alloc(hlen);
    read(hb, 16);
    let meta: DistributedCheckpointMeta;
    try {
      meta = JSON.parse(hb.toString('utf8'));
    } catch {
      throw bad('unreadable header');
    }
    const sh = (s >> 1) + 1;
    const sizes = [2 * sh * s * s, sh * s * s, 2 * sh * s * s, sh * s * s];
    let off = Math.ceil((16 + hlen) / 8) * 8;
    const arrays: Float64Array[] = [];
    const len = Buffer.alloc(8);
    for (const n of sizes) {
      if (off + 8 + 8 * n > size) throw bad('truncated data');
      read(len, off);
      if (len.readDoubleLE(0) !== n) throw bad(`made for another box size than --b ${s}`);
      off += 8;
      const a = new Float64Array(n);
      read(new Uint8Array(a.buffer), off);
      arrays.push(a);
      off += 8 * n;
    }
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
