/**
 * The simulated particle: a sum of isotropic 3-D Gaussian blobs, and its ground-truth map.
 *
 * C1: a random cluster of blobs plus a chiral helix of smaller, denser blobs (so the particle has
 * a hand and no symmetry). Cn: a random set of blobs replicated by rotations about z by 360·k/n
 * degrees (active, right-handed: Rz in numerics.md §0.3).
 *
 * Coordinates are in pixels relative to the box centre, voxel box//2 on each axis (the frame in
 * which a `--b box` reconstruction comes out). Sizes scale with the box (reference: 48 px).
 */
import { rotationZ } from '../geometry/matrix.js';
import { Rng } from './random.js';
import { symmetryOrder } from './params.js';

export interface ParticleModel {
  symmetry: string;
  box: number;
  pixelSize: number;
  /** Blob centres (pixels from the box centre), 3 per blob. */
  centres: Float64Array;
  sigmas: Float64Array;
  amplitudes: Float64Array;
}

/** Rounds to 6 decimals, the precision every simulated number is written with. */
export function r6(v: number): number {
  const r = Number(v.toFixed(6));
  return r === 0 ? 0 : r; // no -0
}

const BLOBS = 42;

export function makeModel(rng: Rng, box: number, pixelSize: number, sym: string): ParticleModel {
  const n = symmetryOrder(sym);
  const f = box / 48;
  const c: number[] = [];
  const s: number[] = [];
  const a: number[] = [];
  if (n === 1) {
    // Random cluster: 25 blobs in a ball of radius 0.2·box.
    for (let i = 0; i < 25; i++) {
      let x: number, y: number, z: number;
      do {
        x = rng.uniform(-1, 1);
        y = rng.uniform(-1, 1);
        z = rng.uniform(-1, 1);
      } while (x * x + y * y + z * z > 1);
      const R = 0.2 * box;
      c.push(x * R + 0.03 * box, y * R - 0.03 * box, z * R * 0.6);
      s.push(rng.uniform(1.85, 3.0) * f);
      a.push(rng.uniform(0.6, 1.0));
    }
    // Right-handed helix of 17 blobs winding up along z.
    const hx = -0.0625 * box;
    const hy = 0.05 * box;
    const hr = 0.115 * box;
    for (let i = 0; i < 17; i++) {
      const phi = ((-45 + 25 * i) * Math.PI) / 180;
      c.push(hx + hr * Math.cos(phi), hy + hr * Math.sin(phi), -0.2 * box + (0.375 * box * i) / 16);
      s.push(rng.uniform(1.5, 2.0) * f);
      a.push(rng.uniform(0.9, 1.3));
    }
  } else {
    const base = Math.max(2, Math.round(BLOBS / n));
    const bc: number[] = [];
    const bs: number[] = [];
    const ba: number[] = [];
    for (let i = 0; i < base; i++) {
      const r = rng.uniform(0.08, 0.18) * box;
      const phi = rng.uniform(0, (2 * Math.PI) / n) + 0.3;
      bc.push(r * Math.cos(phi), r * Math.sin(phi), rng.uniform(-0.1, 0.15) * box);
      bs.push(rng.uniform(1.7, 3.0) * f);
      ba.push(rng.uniform(0.65, 1.2));
    }
    for (let k = 0; k < n; k++) {
      const R = rotationZ((360 * k) / n);
      for (let i = 0; i < base; i++) {
        const x = bc[3 * i], y = bc[3 * i + 1], z = bc[3 * i + 2];
        c.push(R[0] * x + R[1] * y, R[3] * x + R[4] * y, z);
        s.push(bs[i]);
        a.push(ba[i]);
      }
    }
  }
  return {
    symmetry: `C${n}`,
    box,
    pixelSize,
    centres: Float64Array.from(c, r6),
    sigmas: Float64Array.from(s, r6),
    amplitudes: Float64Array.from(a, r6),
  };
}

/**
 * rho[z,y,x] = Σ_b a_b exp(−|(x,y,z) − box//2 − c_b|² / (2 s_b²)), x fastest, float32.
 * Separable per blob: no allocation inside the voxel loops.
 */
export function groundTruth(m: ParticleModel): Float32Array {
  const B = m.box;
  const half = Math.floor(B / 2);
  const out = new Float64Array(B * B * B);
  const gx = new Float64Array(B);
  const gy = new Float64Array(B);
  const gz = new Float64Array(B);
  const nb = m.sigmas.length;
  for (let b = 0; b < nb; b++) {
    const s2 = 2 * m.sigmas[b] * m.sigmas[b];
    const cx = half + m.centres[3 * b], cy = half + m.centres[3 * b + 1], cz = half + m.centres[3 * b + 2];
    for (let i = 0; i < B; i++) {
      gx[i] = Math.exp(-((i - cx) * (i - cx)) / s2);
      gy[i] = Math.exp(-((i - cy) * (i - cy)) / s2);
      gz[i] = m.amplitudes[b] * Math.exp(-((i - cz) * (i - cz)) / s2);
    }
    for (let z = 0; z < B; z++) {
      const vz = gz[z];
      for (let y = 0; y < B; y++) {
        const vzy = vz * gy[y];
        const row = (z * B + y) * B;
        for (let x = 0; x < B; x++) out[row + x] += vzy * gx[x];
      }
    }
  }
  return Float32Array.from(out);
}
