/**
 * A run killed with SIGKILL halfway (or while writing its maps) and restarted with
 * --only_do_unfinished gives the maps of an uninterrupted run and does not back-project the
 * finished tomograms again.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pearson } from '../src/analysis/fsc.js';
import { readMrc } from '../src/formats/mrc.js';
import { simulateDataset } from '../src/simulate/dataset.js';
import { SIM_DEFAULTS } from '../src/simulate/params.js';
import { CLI, CONFORMANCE, runCli } from './helpers/paths.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tomorecon-resume-'));
const data = path.join(tmp, 'data');
const TOMOS = 4;
// A checkpoint after every tomogram, as RELION (the default waits for 5 s of work).
const ARGS = ['reconstruct', '--i', 'optimisation_set.star', '--b', '96', '--j_out', '1', '--j_in', '1', '--checkpoint_interval', '0'];

beforeAll(() => {
  simulateDataset({ ...SIM_DEFAULTS, seed: 11, tomos: TOMOS, particles: 16, tiltStep: 6, image: [256, 256], tomoSize: [256, 256, 128] }, data);
}, 120_000);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('resume after SIGKILL', () => {
  it('finishes from the checkpoint with the same maps and without redoing finished tomograms', async () => {
    const clean = path.join(tmp, 'clean');
    expect(runCli([...ARGS, '--o', clean], data).status).toBe(0);

    const out = path.join(tmp, 'killed');
    const ckpt = path.join(out, 'temp', 'tomorecon_sums.ckpt');
    const child = spawn(process.execPath, [CLI, ...ARGS, '--o', out], { cwd: data, stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Kill as soon as the first tomogram's sums are on disk.
    while (!fs.existsSync(ckpt) && child.exitCode === null) await new Promise((r) => setTimeout(r, 2));
    child.kill('SIGKILL');
    await exited;
    expect(child.signalCode, 'the run must still have been working when killed').toBe('SIGKILL');
    expect(fs.existsSync(path.join(out, 'merged.mrc'))).toBe(false);

    const resumed = runCli([...ARGS, '--o', out, '--only_do_unfinished'], data);
    expect(resumed.status).toBe(0);
    const m = /resuming: (\d+) of (\d+) tomograms already done/.exec(resumed.stdout);
    expect(m, resumed.stdout).not.toBeNull();
    const done = Number(m![1]);
    expect(Number(m![2])).toBe(TOMOS);
    expect(done).toBeGreaterThanOrEqual(1);
    expect(done).toBeLessThan(TOMOS);
    expect(resumed.stdout).toContain(`back-projected ${TOMOS - done} tomogram(s) in this run`);
    for (const f of ['half1.mrc', 'half2.mrc', 'merged.mrc', 'data_merged.mrc', 'weight_merged.mrc']) {
      const r = pearson(readMrc(path.join(out, f)).data, readMrc(path.join(clean, f)).data);
      expect(r, `${f}: r = ${r}`).toBeGreaterThanOrEqual(0.999999);
    }
  });

  it('a run killed while writing its maps resumes without back-projecting again', async () => {
    const clean = path.join(tmp, 'clean2');
    expect(runCli([...ARGS, '--o', clean], data).status).toBe(0);
    const out = path.join(tmp, 'killedLate');
    const ckpt = path.join(out, 'temp', 'tomorecon_sums.ckpt');
    // The checkpoint's JSON header lists the finished tomograms; the one after the last tomogram is
    // written while the maps are made, and removed once they are all written.
    const doneInCheckpoint = (): number => {
      try {
        const fd = fs.openSync(ckpt, 'r');
        try {
          const head = Buffer.alloc(4096);
          const n = fs.readSync(fd, head, 0, head.length, 0);
          const m = /"done":\[([\d,]*)\]/.exec(head.subarray(0, n).toString('latin1'));
          return m ? m[1].split(',').filter(Boolean).length : 0;
        } finally {
          fs.closeSync(fd);
        }
      } catch {
        return 0;
      }
    };
    const child = spawn(process.execPath, [CLI, ...ARGS, '--o', out], { cwd: data, stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    while (doneInCheckpoint() < TOMOS && child.exitCode === null) await new Promise((r) => setTimeout(r, 1));
    child.kill('SIGKILL');
    await exited;
    expect(child.signalCode, 'the run must still have been finalising when killed').toBe('SIGKILL');

    const resumed = runCli([...ARGS, '--o', out, '--only_do_unfinished'], data);
    expect(resumed.status).toBe(0);
    expect(resumed.stdout).toContain(`resuming: ${TOMOS} of ${TOMOS} tomograms already done`);
    expect(resumed.stdout).toContain('back-projected 0 tomogram(s) in this run');
    expect(fs.existsSync(ckpt)).toBe(false);
    for (const f of ['half1.mrc', 'half2.mrc', 'merged.mrc', 'data_merged.mrc', 'weight_merged.mrc']) {
      const r = pearson(readMrc(path.join(out, f)).data, readMrc(path.join(clean, f)).data);
      expect(r, `${f}: r = ${r}`).toBeGreaterThanOrEqual(0.999999);
    }
  });
});

describe('resume refused', () => {
  it('when a tilt-series STAR file changed after the checkpoint (its CTF went into the sums)', () => {
    const V1 = path.join(CONFORMANCE, 'V1');
    const copy = path.join(tmp, 'V1-edited');
    fs.mkdirSync(path.join(copy, 'tilt_series'), { recursive: true });
    for (const f of ['optimisation_set.star', 'particles.star', 'motion.star', 'tomograms.star']) fs.symlinkSync(path.join(V1, f), path.join(copy, f));
    for (const ts of ['TS_01', 'TS_02']) {
      fs.symlinkSync(path.join(V1, 'tilt_series', `${ts}.mrcs`), path.join(copy, 'tilt_series', `${ts}.mrcs`));
      fs.copyFileSync(path.join(V1, 'tilt_series', `${ts}.star`), path.join(copy, 'tilt_series', `${ts}.star`));
    }
    const args = ['reconstruct', '--i', 'optimisation_set.star', '--b', '32', '--j_out', '1', '--j_in', '1', '--o', path.join(tmp, 'edited-out')];
    const first = runCli([...args, '--no_recon'], copy);
    expect(first.status, first.stderr).toBe(0);
    // Unchanged inputs: the checkpoint is taken.
    const same = runCli([...args, '--no_recon', '--only_do_unfinished'], copy);
    expect(same.status, same.stderr).toBe(0);
    expect(same.stdout).toContain('resuming: 2 of 2 tomograms already done');
    // A new defocus for the first tilt of TS_02 (as after CTF refinement).
    const ts = path.join(copy, 'tilt_series', 'TS_02.star');
    const text = fs.readFileSync(ts, 'utf8');
    const edited = text.replace(/^(\d+@\S+(?:\s+\S+){4}\s+)(\d+)\./m, (_, head: string, d: string) => `${head}${Number(d) + 100}.`);
    expect(edited).not.toBe(text);
    fs.writeFileSync(ts, edited);
    const resumed = runCli([...args, '--only_do_unfinished'], copy);
    expect(resumed.status).not.toBe(0);
    expect(resumed.stderr).toContain('was made with other options or input files');
    expect(resumed.stderr).not.toMatch(/\n\s+at /);
  });
});
