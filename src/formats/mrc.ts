/**
 * MRC / MRCS reading and writing as RELION does it (spec formats.md §6).
 * Reading converts every supported mode to float32; writing is always mode 2, little-endian.
 */
import fs from 'node:fs';
import os from 'node:os';
import { TomoError } from '../errors.js';
import { writeFileAtomic, writeFileAtomicDeferred, fsReason } from './atomicWrite.js';

export interface MrcHeader {
  path: string;
  nx: number;
  ny: number;
  nz: number;
  mode: number;
  /** cella / (mx, my, mz) per axis; 0 where mx or cella is 0. */
  pixelSize: [number, number, number];
  /** 1024 + nsymbt (the extended header is skipped). */
  dataOffset: number;
  littleEndian: boolean;
  fileSize: number;
}

const HEADER_BYTES = 1024;
const HOST_LE = os.endianness() === 'LE';

/** Bytes per voxel of the supported (real-valued) modes; mode 101 packs two 4-bit voxels in a byte. */
const BYTES_PER_VOXEL: Record<number, number> = { 0: 1, 1: 2, 2: 4, 6: 2, 12: 2, 101: 0.5 };

// ---------------------------------------------------------------- float16

// Scratch for reinterpreting float32 bits (module level: no allocation per call).
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE 754 binary16 bits -> number (subnormals, ±inf and NaN included). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24; // zero / subnormal
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/**
 * number -> IEEE 754 binary16 bits, round to nearest even. The value is first rounded to
 * float32; the double rounding this implies only matters for values within 2^-29 relative of a
 * half-way point, which is irrelevant for image data.
 */
export function floatToHalf(f: number): number {
  f32[0] = f;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0); // inf, or a quiet NaN
  const e = exp - 127 + 15; // re-biased exponent
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> inf
  let shift: number;
  let h: number;
  if (e <= 0) {
    // Result is subnormal (or zero): shift the mantissa, with its implicit bit, right.
    if (e < -10) return sign; // below half the smallest subnormal
    mant |= 0x800000;
    shift = 14 - e;
    h = mant >>> shift;
  } else {
    shift = 13;
    h = (e << 10) | (mant >>> 13);
  }
  const rem = mant & ((1 << shift) - 1);
  const halfway = 1 << (shift - 1);
  // A carry out of the mantissa correctly bumps the exponent (up to 0x7c00 = inf).
  if (rem > halfway || (rem === halfway && (h & 1))) h++;
  return sign | h;
}

/** Decoding table for mode 12, built on first use (256 KiB). */
let halfTable: Float32Array | null = null;
function getHalfTable(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfToFloat(h);
  }
  return halfTable;
}

// ---------------------------------------------------------------- reading

function openForRead(path: string): number {
  try {
    return fs.openSync(path, 'r');
  } catch (e) {
    throw new TomoError(`cannot read MRC file ${path}: ${fsReason(e)}`);
  }
}

/** Reads exactly `target.length` bytes at `position`; a short read means the file shrank under us. */
function readFully(fd: number, target: Uint8Array, position: number, path: string): void {
  const maxChunk = 1 << 30; // readSync is limited to 2 GiB per call
  let done = 0;
  while (done < target.length) {
    let got: number;
    try {
      got = fs.readSync(fd, target, done, Math.min(maxChunk, target.length - done), position + done);
    } catch (e) {
      throw new TomoError(`cannot read MRC file ${path}: ${fsReason(e)}`);
    }
    if (got === 0) {
      throw new TomoError(`${path}: truncated MRC file: expected ${target.length} bytes at offset ${position}, file ended after ${done}`);
    }
    done += got;
  }
}

function readHeaderFd(fd: number, path: string): MrcHeader {
  let fileSize: number;
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new TomoError(`cannot read MRC file ${path}: not a regular file`);
    fileSize = st.size;
  } catch (e) {
    if (e instanceof TomoError) throw e;
    throw new TomoError(`cannot read MRC file ${path}: ${fsReason(e)}`);
  }
  if (fileSize < HEADER_BYTES) {
    throw new TomoError(`${path}: not an MRC file: ${fileSize} bytes, shorter than the ${HEADER_BYTES}-byte header`);
  }
  const buf = new Uint8Array(HEADER_BYTES);
  readFully(fd, buf, 0, path);
  const dv = new DataView(buf.buffer);

  // RELION's swap rule: implausible mode or nx as little-endian means the file is big-endian.
  const le = !(Math.abs(dv.getInt32(12, true)) > 65535 || Math.abs(dv.getInt32(0, true)) > 65535);
  const int = (off: number): number => dv.getInt32(off, le);
  const nx = int(0);
  const ny = int(4);
  const nz = int(8);
  const mode = int(12);
  const nsymbt = int(92);

  if (mode === 3 || mode === 4) {
    throw new TomoError(`${path}: complex MRC mode ${mode} not supported (only real-space images)`);
  }
  const bpv = BYTES_PER_VOXEL[mode];
  if (bpv === undefined) {
    throw new TomoError(`${path}: unsupported MRC mode ${mode} (supported: 0 int8, 1 int16, 2 float32, 6 uint16, 12 float16, 101 4-bit; is this an MRC file?)`);
  }
  if (nx < 1 || ny < 1 || nz < 1) {
    throw new TomoError(`${path}: invalid MRC header: dimensions ${nx} x ${ny} x ${nz}, all must be >= 1`);
  }
  // Sections of 4-bit voxels must fill whole bytes (as RELION requires).
  if (mode === 101 && (nx * ny) % 2 !== 0) {
    throw new TomoError(`${path}: MRC mode 101 (4-bit) needs an even number of pixels per section, not ${nx} x ${ny}`);
  }
  if (nsymbt < 0) throw new TomoError(`${path}: invalid MRC header: negative extended header size nsymbt = ${nsymbt}`);
  const dataOffset = HEADER_BYTES + nsymbt;
  if (dataOffset > fileSize) {
    throw new TomoError(`${path}: invalid MRC header: extended header of ${nsymbt} bytes (nsymbt) extends beyond the end of the ${fileSize}-byte file`);
  }
  const expected = dataOffset + nx * ny * nz * bpv;
  if (fileSize < expected) {
    throw new TomoError(
      `${path}: truncated MRC file: ${nx} x ${ny} x ${nz} voxels of mode ${mode} need ${expected} bytes, file has ${fileSize}`,
    );
  }
  const pixel = (k: number): number => {
    const m = int(28 + 4 * k);
    const a = dv.getFloat32(40 + 4 * k, le);
    return m !== 0 && a !== 0 ? a / m : 0;
  };
  return { path, nx, ny, nz, mode, pixelSize: [pixel(0), pixel(1), pixel(2)], dataOffset, littleEndian: le, fileSize };
}

function withFd<T>(path: string, fn: (fd: number) => T): T {
  const fd = openForRead(path);
  try {
    return fn(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Converts `count` voxels of `mode` from `src` into `out[outOff ...]`. */
function decode(src: Uint8Array, count: number, mode: number, le: boolean, out: Float32Array, outOff: number): void {
  const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
  switch (mode) {
    case 0:
      for (let i = 0; i < count; i++) out[outOff + i] = dv.getInt8(i);
      break;
    case 1:
      for (let i = 0; i < count; i++) out[outOff + i] = dv.getInt16(2 * i, le);
      break;
    case 6:
      for (let i = 0; i < count; i++) out[outOff + i] = dv.getUint16(2 * i, le);
      break;
    case 12: {
      const table = getHalfTable();
      for (let i = 0; i < count; i++) out[outOff + i] = table[dv.getUint16(2 * i, le)];
      break;
    }
    case 2:
      for (let i = 0; i < count; i++) out[outOff + i] = dv.getFloat32(4 * i, le);
      break;
    case 101:
      // Two voxels per byte, the low nibble first (count is even: sections are).
      for (let i = 0; 2 * i < count; i++) {
        const b = src[i];
        out[outOff + 2 * i] = b & 15;
        out[outOff + 2 * i + 1] = b >>> 4;
      }
      break;
  }
}

/** Reads `voxels` voxels starting at byte `position` into `into` (or a new float32 array). */
function readVoxels(fd: number, h: MrcHeader, position: number, voxels: number, into?: Float32Array): Float32Array {
  if (into && into.length < voxels) throw new RangeError(`readVoxels: target holds ${into.length} values, ${voxels} needed`);
  const out = into ? into.subarray(0, voxels) : new Float32Array(voxels);
  const bpv = BYTES_PER_VOXEL[h.mode];
  if (h.mode === 2 && h.littleEndian === HOST_LE) {
    // Native float32: read straight into the result, no conversion.
    readFully(fd, new Uint8Array(out.buffer, out.byteOffset, out.byteLength), position, h.path);
    return out;
  }
  // Otherwise convert chunk by chunk through one reusable buffer.
  const chunkVoxels = Math.min(voxels, (8 << 20) / bpv);
  const chunk = new Uint8Array(chunkVoxels * bpv);
  for (let done = 0; done < voxels; done += chunkVoxels) {
    const count = Math.min(chunkVoxels, voxels - done);
    const bytes = chunk.subarray(0, count * bpv);
    readFully(fd, bytes, position + done * bpv, h.path);
    decode(bytes, count, h.mode, h.littleEndian, out, done);
  }
  return out;
}

/** Reads and validates the header of an MRC/MRCS file. */
export function readMrcHeader(path: string): MrcHeader {
  return withFd(path, (fd) => readHeaderFd(fd, path));
}

/** Reads the whole file as float32, x fastest, then y, then z. */
export function readMrc(path: string): { header: MrcHeader; data: Float32Array } {
  return withFd(path, (fd) => {
    const header = readHeaderFd(fd, path);
    return { header, data: readVoxels(fd, header, header.dataOffset, header.nx * header.ny * header.nz) };
  });
}

/**
 * Reads sections (z slices / stack images) [z0, z0 + count) only, with positioned reads.
 * `header` may be passed to skip re-reading it (it must belong to `path`); with `into` the
 * voxels are read into that array (from its start) instead of a new one.
 */
export function readMrcSections(path: string, z0: number, count: number, header?: MrcHeader, into?: Float32Array): Float32Array {
  return withFd(path, (fd) => {
    const h = header ?? readHeaderFd(fd, path);
    if (!Number.isInteger(z0) || !Number.isInteger(count) || z0 < 0 || count < 0 || z0 + count > h.nz) {
      throw new TomoError(`${path}: sections ${z0} to ${z0 + count - 1} requested, but the file has sections 0 to ${h.nz - 1}`);
    }
    const section = h.nx * h.ny;
    return readVoxels(fd, h, h.dataOffset + z0 * section * BYTES_PER_VOXEL[h.mode], count * section, into);
  });
}

// ---------------------------------------------------------------- writing

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `tomorecon   25-Nov-25  21:30:00`, in RELION's label style. */
function headerLabel(d = new Date()): string {
  const p2 = (v: number): string => String(v).padStart(2, '0');
  return (
    `tomorecon   ${p2(d.getDate())}-${MONTHS[d.getMonth()]}-${p2(d.getFullYear() % 100)}  ` +
    `${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`
  );
}

interface VoxelStats {
  min: number;
  max: number;
  mean: number;
  /** Sample standard deviation (n − 1). */
  rms: number;
}

/**
 * Float32 values of `data` into `out` (which may be `data` itself) and their statistics: min,
 * max, mean and sample standard deviation of exactly the float32 values written, in two passes
 * (the sum, then the squared deviations from the mean), four partial sums each. Until 2026-11-26
 * a one-pass Welford update, whose division per voxel in a dependency chain bounded the speed;
 * the header values differ from it in the last bits of float32 at most (test).
 */
function toFloat32WithStats(data: Float32Array | Float64Array, out: Float32Array): VoxelStats {
  const n = data.length;
  const n4 = n & ~3;
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  for (let i = 0; i < n4; i += 4) {
    out[i] = data[i];
    out[i + 1] = data[i + 1];
    out[i + 2] = data[i + 2];
    out[i + 3] = data[i + 3];
    s0 += out[i];
    s1 += out[i + 1];
    s2 += out[i + 2];
    s3 += out[i + 3];
  }
  for (let i = n4; i < n; i++) {
    out[i] = data[i];
    s0 += out[i];
  }
  const mean = (s0 + s1 + s2 + s3) / n;
  let min = Infinity;
  let max = -Infinity;
  let q0 = 0;
  let q1 = 0;
  let q2 = 0;
  let q3 = 0;
  for (let i = 0; i < n4; i += 4) {
    const a = out[i];
    const b = out[i + 1];
    const c = out[i + 2];
    const d = out[i + 3];
    if (a < min) min = a;
    if (a > max) max = a;
    if (b < min) min = b;
    if (b > max) max = b;
    if (c < min) min = c;
    if (c > max) max = c;
    if (d < min) min = d;
    if (d > max) max = d;
    q0 += (a - mean) * (a - mean);
    q1 += (b - mean) * (b - mean);
    q2 += (c - mean) * (c - mean);
    q3 += (d - mean) * (d - mean);
  }
  for (let i = n4; i < n; i++) {
    const v = out[i];
    if (v < min) min = v;
    if (v > max) max = v;
    q0 += (v - mean) * (v - mean);
  }
  const m2 = q0 + q1 + q2 + q3;
  return { min, max, mean, rms: n > 1 ? Math.sqrt(m2 / (n - 1)) : 0 };
}

function checkVolume(data: Float32Array | Float64Array, nx: number, ny: number, nz: number, what: string): void {
  if (!(Number.isInteger(nx) && Number.isInteger(ny) && Number.isInteger(nz) && nx >= 1 && ny >= 1 && nz >= 1) || data.length !== nx * ny * nz) {
    throw new RangeError(`${what}: ${data.length} values do not form a ${nx} x ${ny} x ${nz} volume`);
  }
}

/**
 * The 1024-byte header as RELION writes it: mx..mz = nx..nz, cella = px * n, angles 90, axes
 * 1 2 3, min/max/mean and sample std of the data, written into `bytes` from offset 0.
 */
function writeHeader(bytes: Uint8Array, nx: number, ny: number, nz: number, pixelSize: number, st: VoxelStats): void {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  const setI = (off: number, v: number): void => dv.setInt32(off, v, true);
  const setF = (off: number, v: number): void => dv.setFloat32(off, v, true);
  [nx, ny, nz].forEach((v, k) => {
    setI(4 * k, v); // nx, ny, nz
    setI(28 + 4 * k, v); // mx, my, mz
    setF(40 + 4 * k, pixelSize * v); // cella
    setF(52 + 4 * k, 90); // alpha, beta, gamma
    setI(64 + 4 * k, k + 1); // mapc, mapr, maps
  });
  setI(12, 2); // mode: float32
  // nxstart..nzstart (16-27), ispg (88), nsymbt (92), extra, origin (196-207): zero
  setF(76, st.min);
  setF(80, st.max);
  setF(84, st.mean);
  bytes.set([0x4d, 0x41, 0x50, 0x20, 0x44, 0x41, 0x00, 0x00], 208); // 'MAP ' + little-endian machine stamp
  setF(216, st.rms);
  setI(220, 1); // nlabl
  const label = headerLabel();
  for (let i = 0; i < label.length && i < 80; i++) bytes[224 + i] = label.charCodeAt(i) & 0x7f;
}

/** Mode-2 little-endian MRC bytes (header + data) in one allocation (see writeHeader). */
export function encodeMrc(data: Float32Array | Float64Array, nx: number, ny: number, nz: number, pixelSize: number): Uint8Array {
  checkVolume(data, nx, ny, nz, 'encodeMrc');
  const n = data.length;
  const bytes = new Uint8Array(HEADER_BYTES + 4 * n);
  let st: VoxelStats;
  if (HOST_LE) {
    st = toFloat32WithStats(data, new Float32Array(bytes.buffer, HEADER_BYTES, n));
  } else {
    const f = new Float32Array(n);
    st = toFloat32WithStats(data, f);
    const dv = new DataView(bytes.buffer);
    for (let i = 0; i < n; i++) dv.setFloat32(HEADER_BYTES + 4 * i, f[i], true);
  }
  writeHeader(bytes, nx, ny, nz, pixelSize, st);
  return bytes;
}

/** What writeMrc and writeMrcDeferred take: the file, the volume (x fastest), its size and pixel size. */
type MrcWriteArgs = [
  path: string,
  data: Float32Array | Float64Array,
  nx: number,
  ny: number,
  nz: number,
  pixelSize: number,
  /** float32 buffer (≥ nx·ny·nz values) that float64 data is converted into; a new array when absent. */
  scratch?: Float32Array,
];

/**
 * The file's bytes as chunks (header, values) with the same bytes as encodeMrc but, on
 * little-endian hosts, without a copy of the volume: float32 data is written from the array
 * itself, float64 data is converted into the scratch buffer.
 */
function mrcFileChunks(...[, data, nx, ny, nz, pixelSize, scratch]: MrcWriteArgs): Uint8Array[] {
  checkVolume(data, nx, ny, nz, 'writeMrc');
  if (!HOST_LE) return [encodeMrc(data, nx, ny, nz, pixelSize)];
  const n = data.length;
  if (scratch && scratch.length < n) throw new RangeError(`writeMrc: scratch holds ${scratch.length} values, ${n} needed`);
  const values = data instanceof Float32Array ? data : (scratch ?? new Float32Array(n)).subarray(0, n);
  const st = toFloat32WithStats(data, values);
  const header = new Uint8Array(HEADER_BYTES);
  writeHeader(header, nx, ny, nz, pixelSize, st);
  return [header, new Uint8Array(values.buffer, values.byteOffset, values.byteLength)];
}

/** Writes a mode-2 MRC file atomically (existing files are replaced), with encodeMrc's bytes. */
export function writeMrc(...args: MrcWriteArgs): void {
  writeFileAtomic(args[0], mrcFileChunks(...args));
}

/**
 * writeMrc whose fsync and rename are left to libuv's thread pool (writeFileAtomicDeferred): the
 * bytes are written and the scratch buffer free again when it returns; the promise settles once
 * the file is in place.
 */
export function writeMrcDeferred(...args: MrcWriteArgs): Promise<void> {
  return writeFileAtomicDeferred(args[0], mrcFileChunks(...args));
}
