/**
 * Units of distributed work: a chunk is a run of consecutive particles of one tomogram. Chunks
 * are numbered in tomogram-set order, so the same options and inputs always give the same chunks
 * (the coordinator's checkpoint refers to them by id).
 */
import { createHash } from 'node:crypto';

export interface Chunk {
  id: number;
  /** Index into RunPlan.work. */
  work: number;
  /** Tomogram index in the tomogram set, and its name (for messages). */
  tomogram: number;
  tomoName: string;
  /** First particle (index within the tomogram's records) and number of particles. */
  first: number;
  count: number;
}

export interface WorkLike {
  tomogram: { index: number; name: string };
  particleCount: number;
}

/** ceil(total / 256) particles, between 1 and 64: many more chunks than workers, little overhead. */
export function defaultChunkSize(totalParticles: number): number {
  return Math.max(1, Math.min(64, Math.ceil(totalParticles / 256)));
}

export function planChunks(work: WorkLike[], chunkSize: number): Chunk[] {
  const chunks: Chunk[] = [];
  work.forEach((w, wi) => {
    // Even split of the tomogram's particles into ceil(n / chunkSize) runs.
    const n = Math.ceil(w.particleCount / chunkSize);
    for (let k = 0; k < n; k++) {
      const first = Math.floor((k * w.particleCount) / n);
      const end = Math.floor(((k + 1) * w.particleCount) / n);
      chunks.push({ id: chunks.length, work: wi, tomogram: w.tomogram.index, tomoName: w.tomogram.name, first, count: end - first });
    }
  });
  return chunks;
}

/** A short digest of the chunk plan, part of the checkpoint fingerprint. */
export function chunkPlanDigest(chunks: Chunk[]): string {
  const h = createHash('sha256');
  for (const c of chunks) h.update(`${c.id},${c.tomogram},${c.first},${c.count};`);
  return h.digest('hex').slice(0, 32);
}
