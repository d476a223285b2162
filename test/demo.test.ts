import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// The real CLI (dist/ is built by test/global-setup.ts).
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'tomorecon.js');

function cli(args: string[], cwd = ROOT): { status: number | null; stdout: string; stderr: string; ms: number } {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', timeout: 110_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t0 };
}

let tmp = '';
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'demo-test-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('tomorecon demo', () => {
  it('simulates, reconstructs and reports the FSC against the ground truth', () => {
    const before = new Set(fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith('tomorecon-demo-')));
    const r = cli(['demo']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/running \(in .*\): tomorecon reconstruct --i optimisation_set\.star --b 48 --o recon/);
    expect(r.stdout).toMatch(/reconstruction: 48 particles, .* s/);
    const m = /^\s*FSC 0\.143: ([0-9.]+) Å/m.exec(r.stdout);
    expect(m).not.toBeNull();
    const res = Number(m![1]);
    expect(Number.isFinite(res)).toBe(true);
    // measured 8.79 Å (Nyquist 4 Å); the demo is deterministic (seed 7)
    expect(res).toBeGreaterThan(4);
    expect(res).toBeLessThan(10);
    expect(r.stdout).toMatch(/^\s*FSC 0\.5: [0-9.]+ Å/m);
    expect(r.stdout).toMatch(/half-map FSC 0\.143: [0-9.]+ Å/);
    expect(r.stdout).toMatch(/Pearson r: 0\.[0-9]+/);
    // well under a minute on 2 cores (measured ~4 s)
    expect(r.ms).toBeLessThan(60_000);
    // the temporary dataset is removed
    const after = fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith('tomorecon-demo-') && !before.has(f));
    expect(after).toEqual([]);
  });
});

describe('tomorecon simulate and fsc (CLI)', () => {
  it('simulates a dataset and compares two maps', () => {
    const dir = path.join(tmp, 'sim');
    const s = cli(['simulate', '--o', dir, '--tomos', '1', '--particles', '3', '--box', '32', '--image', '192', '--tomo-size', '192,192,96', '--tilt-range', '30', '--tilt-step', '15', '--seed', '5']);
    expect(s.stderr).toMatch(/TS_01: 3 particles × 5 tilts rendered/);
    expect(s.status).toBe(0);
    expect(s.stdout).toMatch(/reconstruct with: cd .* && tomorecon reconstruct --i optimisation_set\.star --b 32 --o recon/);
    const truth = path.join(dir, 'ground_truth.mrc');
    expect(fs.existsSync(truth)).toBe(true);
    expect(fs.existsSync(path.join(dir, 'tilt_series', 'TS_01.mrcs'))).toBe(true);

    const f = cli(['fsc', truth, truth]);
    expect(f.status).toBe(0);
    expect(f.stderr).toBe('');
    expect(f.stdout).toMatch(/^shell\s+resolution_A\s+FSC$/m);
    expect(f.stdout).toMatch(/^\s+16\s+4\.00\s+1\.0000$/m); // last shell: Nyquist
    expect(f.stdout).toMatch(/^FSC 0\.5: 4\.00 Å \(Nyquist; FSC stays above 0\.5\)$/m);
    expect(f.stdout).toMatch(/^FSC 0\.143: 4\.00 Å/m);
    expect(f.stdout).toMatch(/^Pearson r: 1\.0000$/m);

    const j = cli(['fsc', truth, truth, '--json']);
    expect(j.status).toBe(0);
    const o = JSON.parse(j.stdout);
    expect(o.box).toBe(32);
    expect(o.pixel_size).toBe(2);
    expect(o.pearson).toBe(1);
    expect(o['fsc_0.143_A']).toBe(4);
    expect(o.shells.length).toBe(17);
  });

  it('fsc on the conformance maps prints the runs.json numbers', () => {
    const shared = path.resolve(ROOT, '../shared/conformance');
    if (!fs.existsSync(shared)) return;
    const r = cli(['fsc', path.join(shared, 'relion/V1/c1/merged.mrc'), path.join(shared, 'V1/ground_truth.mrc')]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^FSC 0\.5: 9\.84 Å$/m);
    expect(r.stdout).toMatch(/^FSC 0\.143: 8\.65 Å$/m);
    expect(r.stdout).toMatch(/^Pearson r: 0\.851\d$/m);
  });

  it('a missing file is one line on stderr naming it, exit code 1, no stack trace', () => {
    const missing = path.join(tmp, 'no-such-map.mrc');
    const existing = path.resolve(ROOT, '../shared/conformance/V1/ground_truth.mrc');
    const r = cli(['fsc', existing, missing]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines.length).toBe(1);
    expect(lines[0]).toContain(missing);
    expect(lines[0]).toMatch(/^tomorecon: error: /);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('maps of different sizes: error naming both files', () => {
    const a = path.resolve(ROOT, '../shared/conformance/V1/ground_truth.mrc');
    const b = path.join(tmp, 'sim', 'ground_truth.mrc');
    if (!fs.existsSync(a) || !fs.existsSync(b)) return;
    const r = cli(['fsc', a, b]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(a);
    expect(r.stderr).toContain(b);
    expect(r.stderr.trimEnd().split('\n').length).toBe(1);
  });

  it('bad simulate values are clear errors', () => {
    const r = cli(['simulate', '--o', path.join(tmp, 'bad'), '--box', 'big']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("tomorecon: error: --box: expected a number, got 'big'\n");
    const s = cli(['simulate', '--o', path.join(tmp, 'bad'), '--tomo-size', '100,100']);
    expect(s.status).toBe(1);
    expect(s.stderr).toMatch(/--tomo-size '100,100': expected 3 whole numbers/);
  });
});
