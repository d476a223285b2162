/**
 * The WebAssembly back-projection (assembly/backproject.ts → src/recon/backprojectWasm.ts) against
 * backprojectSlice, the JavaScript reference: the same sums bit for bit.
 */
import { describe, expect, it } from 'vitest';
import { Accumulator, backprojectSlice, createAccumulator } from '../src/recon/backproject.js';
import { BACKPROJECT_WASM_BASE64 } from '../src/recon/backprojectWasm.js';
import { WasmArena, insertSlice } from '../src/recon/wasmArena.js';
import { eulerToMatrix, Mat3 } from '../src/geometry/matrix.js';
import { rng } from './helpers/random.js';
// @ts-expect-error: a plain ESM script without types
import { compileBackproject } from '../scripts/build-wasm.mjs';

describe('WebAssembly back-projection', () => {
  it('is built from assembly/backproject.ts as checked in (npm run build:wasm)', () => {
    expect(compileBackproject()).toBe(BACKPROJECT_WASM_BASE64);
  }, 60_000);

  it('gives backprojectSlice’s sums bit for bit, at any orientation (axis-aligned ones too) and radius', () => {
    const r = rng(3);
    for (const s of [16, 32, 48, 64]) {
      const sh = (s >> 1) + 1;
      const arena = WasmArena.create(3 * 8 * sh * s * s + 12 * sh * s + 4096)!;
      expect(arena).not.toBeNull();
      const inArena: Accumulator = { data: arena.f64(2 * sh * s * s), weight: arena.f64(sh * s * s) };
      const P = arena.f32(2 * sh * s);
      const Wt = arena.f32(sh * s);
      const ref = createAccumulator(s);
      const turns: Mat3[] = [eulerToMatrix(0, 0, 0), eulerToMatrix(90, 0, 0), eulerToMatrix(0, 90, 0), eulerToMatrix(0, 90, 90), eulerToMatrix(90, 90, 90)];
      for (let k = 0; k < 60; k++) turns.push(eulerToMatrix(360 * r(), 180 * r(), 360 * r()).map((v) => v * (0.8 + 0.4 * r())) as Mat3);
      for (const M of turns) {
        for (let i = 0; i < P.length; i++) P[i] = r() - 0.5;
        for (let i = 0; i < Wt.length; i++) Wt[i] = r();
        const maxFreq = Math.floor(1 + r() * (s / 2 + 1));
        expect(arena.insert(inArena, s, P, Wt, M, maxFreq)).toBe(true);
        backprojectSlice(ref, s, P, Wt, M, maxFreq);
      }
      expect(inArena.data).toEqual(ref.data);
      expect(inArena.weight).toEqual(ref.weight);
      expect(ref.weight.some((v) => v !== 0)).toBe(true);
    }
  });

  it('leaves arrays outside the arena to backprojectSlice; no arena past 4 GiB', () => {
    const s = 16;
    const sh = 9;
    const arena = WasmArena.create(1 << 20)!;
    const acc = createAccumulator(s);
    const ref = createAccumulator(s);
    const P = Float32Array.from({ length: 2 * sh * s }, (_, i) => Math.sin(i));
    const Wt = new Float32Array(sh * s).fill(1);
    const M = eulerToMatrix(10, 20, 30);
    expect(arena.insert(acc, s, P, Wt, M, 8)).toBe(false);
    insertSlice(arena, acc, s, P, Wt, M, 8);
    backprojectSlice(ref, s, P, Wt, M, 8);
    expect(acc.data).toEqual(ref.data);
    expect(WasmArena.create(2 ** 32)).toBeNull();
    expect(() => arena.f64(1 << 20)).toThrow(/arena .* is full/);
  });
});
