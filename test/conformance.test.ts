/**
 * Acceptance: every conformance run of ../shared/conformance/runs.json through the real CLI,
 * compared file by file with RELION 5's outputs.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readMrc } from '../src/formats/mrc.js';
import { CONFORMANCE, runCli } from './helpers/paths.js';
import { fsc, pearson, resolutionAt } from '../src/analysis/fsc.js';

interface Run {
  dataset: string;
  args: string;
  outputs: string[];
  relion_vs_truth?: { map: string; pearson: number; 'fsc_0.5_A': number; 'fsc_0.143_A': number };
}

const runs = JSON.parse(fs.readFileSync(path.join(CONFORMANCE, 'runs.json'), 'utf8')) as Record<string, Record<string, Run>>;
const cases: [string, string, Run][] = [];
for (const [ds, byName] of Object.entries(runs)) {
  for (const [name, run] of Object.entries(byName)) {
    cases.push([ds, name, run]);
  }
}
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tomorecon-conformance-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe.each(cases)('conformance %s/%s', (ds, name, run) => {
  it('reproduces RELION 5 file by file', () => {
    const out = path.join(tmp, `${ds}_${name}`);
    const res = runCli(['reconstruct', ...run.args.split(/\s+/), '--o', out], path.join(CONFORMANCE, run.dataset));
    expect(res.stderr).not.toMatch(/internal error/);
    expect(res.status).toBe(0);
    const relionDir = path.join(CONFORMANCE, 'relion', ds, name);
    const written = new Map<string, ReturnType<typeof readMrc>>();
    for (const file of run.outputs) {
      const ours = readMrc(path.join(out, file));
      const ref = readMrc(path.join(relionDir, file));
      written.set(file, ours);
      expect([ours.header.nx, ours.header.ny, ours.header.nz], file).toEqual([ref.header.nx, ref.header.ny, ref.header.nz]);
      expect(ours.header.pixelSize[0], file).toBeCloseTo(ref.header.pixelSize[0], 5);
      if (file === 'weight_merged.mrc') continue; // decisions.md Q1: checked against the half weights below
      const r = pearson(ours.data, ref.data);
      const bound = file.startsWith('weight_') ? 0.9999 : 0.999;
      expect(r, `${file}: r = ${r}`).toBeGreaterThanOrEqual(bound);
    }
    // weight_merged = weight_half1 + weight_half2 (float32 files, so compare to float precision).
    const w1 = written.get('weight_half1.mrc')!.data;
    const w2 = written.get('weight_half2.mrc')!.data;
    const wm = written.get('weight_merged.mrc')!.data;
    let maxW = 0;
    let maxErr = 0;
    for (let i = 0; i < wm.length; i++) {
      maxW = Math.max(maxW, Math.abs(wm[i]));
      maxErr = Math.max(maxErr, Math.abs(wm[i] - (w1[i] + w2[i])));
    }
    expect(maxW).toBeGreaterThan(0);
    expect(maxErr / maxW).toBeLessThan(1e-6);

    // Against the ground truth: FSC 0.143 within 0.2 Å of RELION's, or better.
    const truth = run.relion_vs_truth;
    if (truth) {
      const gt = readMrc(path.join(CONFORMANCE, run.dataset, 'ground_truth.mrc'));
      const map = written.get(truth.map)!;
      const n = map.header.nx;
      const res = resolutionAt(fsc(map.data, gt.data, n), 0.143, n, map.header.pixelSize[0]);
      expect(res, `FSC 0.143 vs truth ${res} Å, RELION ${truth['fsc_0.143_A']} Å`).toBeLessThanOrEqual(truth['fsc_0.143_A'] + 0.2);
    }
  });
});
