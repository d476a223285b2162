/**
 * Exact checkpoints and --only_do_unfinished (the SIGKILL test lives in resume.test.ts).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readMrc } from '../src/formats/mrc.js';
import { readCheckpoint, writeCheckpoint } from '../src/engine/checkpoint.js';
import { memoryOf } from '../src/recon/wasmVolume.js';
import { CLI, CONFORMANCE, runCli } from './helpers/paths.js';

const V1 = path.join(CONFORMANCE, 'V1');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tomorecon-ckpt-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const base = ['reconstruct', '--i', 'optimisation_set.star', '--b', '32', '--bin', '2'];

describe('checkpoints', () => {
  it('round-trip the double sums bit for bit', () => {
    const s = 8;
    const n = 5 * 8 * 8;
    const halves = [0, 1].map(() => ({
      data: Float64Array.from({ length: 2 * n }, () => Math.random() * 1e-3),
      weight: Float64Array.from({ length: n }, () => Math.random()),
    })) as [{ data: Float64Array; weight: Float64Array }, { data: Float64Array; weight: Float64Array }];
    const file = path.join(tmp, 'unit', 'temp', 'x.ckpt');
    writeCheckpoint(file, { fingerprint: 'fp', done: [0, 3], halves });
    const back = readCheckpoint(file, s)!;
    expect(back.fingerprint).toBe('fp');
    expect(back.done).toEqual([0, 3]);
    expect(back.halves![1].data).toEqual(halves[1].data);
    expect(back.halves![0].weight).toEqual(halves[0].weight);
    // For a finalisation pool: the data sums read into WebAssembly memories of their own (where
    // its threads transform them in place), the same values; the weights as before.
    const inWasm = readCheckpoint(file, s, true)!;
    for (const h of [0, 1]) {
      expect(memoryOf(inWasm.halves![h].data)).not.toBeNull();
      expect(memoryOf(inWasm.halves![h].weight)).toBeNull();
      expect(inWasm.halves![h].data).toEqual(halves[h].data);
      expect(inWasm.halves![h].weight).toEqual(halves[h].weight);
    }
    expect(memoryOf(back.halves![0].data)).toBeNull();
    expect(() => readCheckpoint(file, 10)).toThrow(/another box size/);
    // Asked for its own fingerprint it is read; for another one (other options, here another
    // box) only its header: no error, no sums.
    expect(readCheckpoint(file, s, false, 'fp')!.halves![1].data).toEqual(halves[1].data);
    expect(() => readCheckpoint(file, 10, false, 'fp')).toThrow(/another box size/);
    expect(readCheckpoint(file, 10, false, 'other')).toEqual({ fingerprint: 'fp', done: [0, 3], halves: null });
    fs.writeFileSync(file, fs.readFileSync(file).subarray(0, 100));
    expect(() => readCheckpoint(file, s)).toThrow(/damaged/);
  });

  it('--no_recon keeps the sums; --only_do_unfinished finishes from them without back-projecting again', () => {
    const o = path.join(tmp, 'resume');
    const first = runCli([...base, '--o', o, '--no_recon'], V1);
    expect(first.status).toBe(0);
    expect(fs.existsSync(path.join(o, 'merged.mrc'))).toBe(false);
    expect(fs.existsSync(path.join(o, 'temp', 'tomorecon_sums.ckpt'))).toBe(true);
    const second = runCli([...base, '--o', o, '--only_do_unfinished'], V1);
    expect(second.status).toBe(0);
    expect(second.stdout).toMatch(/resuming: 2 of 2 tomograms already done/);
    expect(second.stdout).toMatch(/back-projected 0 tomogram\(s\) in this run/);
    expect(fs.existsSync(path.join(o, 'temp', 'tomorecon_sums.ckpt'))).toBe(false);
    const direct = path.join(tmp, 'direct');
    expect(runCli([...base, '--o', direct], V1).status).toBe(0);
    for (const f of ['half1.mrc', 'merged.mrc', 'weight_half2.mrc']) {
      const a = readMrc(path.join(o, f)).data;
      const b = readMrc(path.join(direct, f)).data;
      let diff = 0;
      let max = 0;
      for (let i = 0; i < a.length; i++) {
        diff = Math.max(diff, Math.abs(a[i] - b[i]));
        max = Math.max(max, Math.abs(b[i]));
      }
      expect(diff / max, f).toBeLessThan(1e-6);
    }
  });

  it('refuses to resume from sums made with other options, naming the checkpoint', () => {
    const o = path.join(tmp, 'mismatch');
    expect(runCli([...base, '--o', o, '--no_recon'], V1).status).toBe(0);
    const res = runCli([...base, '--o', o, '--only_do_unfinished', '--no_circle_crop'], V1);
    expect(res.status).toBe(1);
    expect(res.stderr).toMatch(/tomorecon: error: --only_do_unfinished: the checkpoint .*tomorecon_sums\.ckpt was made with other options/);
  });

  it('--checkpoint_interval: a short run writes none by default, and one after every tomogram with 0', async () => {
    // Whether the checkpoint file ever exists while the run goes on (it is removed at the end).
    const seen = async (extra: string[]): Promise<boolean> => {
      const o = path.join(tmp, `interval${extra.join('')}`);
      const ckpt = path.join(o, 'temp', 'tomorecon_sums.ckpt');
      const child = spawn(process.execPath, [CLI, ...base, '--o', o, ...extra], { cwd: V1, stdio: 'ignore' });
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      let found = false;
      while (child.exitCode === null) {
        found ||= fs.existsSync(ckpt);
        await new Promise((r) => setTimeout(r, 1));
      }
      expect(await exited).toBe(0);
      expect(fs.existsSync(path.join(o, 'merged.mrc'))).toBe(true);
      return found;
    };
    expect(await seen([])).toBe(false);
    expect(await seen(['--checkpoint_interval', '0'])).toBe(true);
    const bad = runCli([...base, '--o', path.join(tmp, 'bad'), '--checkpoint_interval', '-1'], V1);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('--checkpoint_interval -1: give seconds ≥ 0');
  });

  it('--no_backup writes no checkpoint', () => {
    const o = path.join(tmp, 'nobackup');
    expect(runCli([...base, '--o', o, '--no_recon', '--no_backup'], V1).status).toBe(0);
    expect(fs.readdirSync(path.join(o, 'temp'))).toEqual([]);
  });
});
