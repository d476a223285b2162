/**
 * The reconstruct command as a user meets it: flags, messages, exit codes, files left behind.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readMrc } from '../src/formats/mrc.js';
import { CLI, CONFORMANCE, REPO, runCli } from './helpers/paths.js';

const V1 = path.join(CONFORMANCE, 'V1');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tomorecon-cli-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const outDir = (): string => path.join(tmp, `run${n++}`);

/** One clear line on stderr, no stack trace, exit 1. */
function expectCleanFailure(res: ReturnType<typeof runCli>, pattern: RegExp): void {
  expect(res.status).toBe(1);
  const errors = res.stderr.split('\n').filter((l) => l.startsWith('tomorecon: error:'));
  expect(errors).toHaveLength(1);
  expect(errors[0]).toMatch(pattern);
  expect(res.stderr).not.toMatch(/^\s+at /m);
  expect(res.stderr).not.toMatch(/internal error/);
}

/** The maps of two output folders agree to 1e-6 of each map's largest value. */
function expectSameMaps(a: string, b: string): void {
  for (const f of ['half1.mrc', 'half2.mrc', 'merged.mrc', 'weight_merged.mrc']) {
    const x = readMrc(path.join(a, f)).data;
    const y = readMrc(path.join(b, f)).data;
    let max = 0;
    let diff = 0;
    for (let i = 0; i < x.length; i++) {
      max = Math.max(max, Math.abs(x[i]));
      diff = Math.max(diff, Math.abs(x[i] - y[i]));
    }
    expect(diff / max, f).toBeLessThan(1e-6);
  }
}

describe('reconstruct flags', () => {
  it('accepts the RELION flags that tomorecon implements and writes note.txt', () => {
    const o = outDir();
    const args = [
      'reconstruct', '--i', 'optimisation_set.star', '--b', '32', '--bin', '2', '--taper', '5', '--cutoff_fract', '0.02',
      '--no_circle_crop', '--no_backup', '--mem', '8', '--j', '2', '--j_out', '1', '--j_in', '1', '--sym', 'c1',
      '--nr_helical_asu', '1', '--helical_rise', '0', '--helical_twist', '0', '--o', o,
    ];
    const res = runCli(args, V1);
    expect(res.stderr).not.toMatch(/error/);
    expect(res.status).toBe(0);
    expect(fs.readFileSync(path.join(o, 'note.txt'), 'utf8')).toBe(`Command:\n\ntomorecon ${args.map((a) => a + ' ').join('')}\n`);
    for (const f of ['half1.mrc', 'half2.mrc', 'merged.mrc', 'data_merged.mrc', 'weight_merged.mrc']) {
      expect(fs.existsSync(path.join(o, f)), f).toBe(true);
    }
    expect(res.stdout).toMatch(/1 thread\(s\)/);
  });

  it('accepts helical symmetry concatenated with a point group', () => {
    const o = outDir();
    const res = runCli(
      ['reconstruct', '--i', 'optimisation_set.star', '--b', '32', '--bin', '2', '--sym', 'C2', '--nr_helical_asu', '3', '--helical_rise', '4', '--helical_twist', '30', '--o', o],
      V1,
    );
    expect(res.status).toBe(0);
    expect(res.stdout).toMatch(/symmetrising with 4 operators \(C2, 3 helical units\)/);
  });

  it.each([
    [['--o', 'X'], /--b \(box size\) is required/],
    [['--b', '48'], /--o \(output directory\) is required/],
    [['--b', '47', '--o', 'X'], /--b 47: the box size must be even/],
    [['--b', 'abc', '--o', 'X'], /--b: expected a number, got 'abc'/],
    [['--b', '48', '--crop', '47', '--o', 'X'], /--b − --crop must be even/],
    [['--b', '33', '--bin', '1.5', '--o', 'X'], /--b 33/],
    [['--b', '34', '--bin', '1.5', '--o', 'X'], /odd extraction box of 51 pixels/],
    [['--b', '48', '--bin', '0', '--o', 'X'], /--bin 0: the binning factor must be a number ≥ 1/],
    [['--b', '48', '--SNR', 'NaN', '--o', 'X'], /--SNR/],
    [['--b', '48', '--j_out', '0', '--o', 'X'], /--j_out 0 must be at least 1/],
    [['--b', '814', '--o', 'X'], /--b 814: boxes above 812 are not supported \(one half set's sums would take 4\.3 GB/],
    [['--b', '48', '--sym', 'C2x', '--o', 'X'], /C2x/],
    [['--b', '48', '--sym', 'I5', '--o', 'X'], /I5/],
    [['--b', '48', '--mem', '0.001', '--o', 'X'], /--mem 0.001 GB cannot hold one accumulator set for --b 48.*at least [0-9.]+ GB/],
  ])('rejects impossible options %j before doing any work', (extra, pattern) => {
    const res = runCli(['reconstruct', '--i', 'optimisation_set.star', ...extra], V1);
    expectCleanFailure(res, pattern);
  });

  it('names a missing input file and leaves existing maps untouched', () => {
    const o = outDir();
    fs.mkdirSync(o);
    fs.writeFileSync(path.join(o, 'merged.mrc'), 'last week');
    const res = runCli(['reconstruct', '--p', 'particles.star', '--t', 'no_such_tomograms.star', '--b', '48', '--o', o], V1);
    expectCleanFailure(res, /no_such_tomograms\.star/);
    expect(fs.readFileSync(path.join(o, 'merged.mrc'), 'utf8')).toBe('last week');
    expect(fs.readdirSync(o)).toEqual(['merged.mrc']);
  });

  it('writes RELION_JOB_EXIT_SUCCESS / FAILURE for the pipeliner and no note.txt', () => {
    const o = outDir();
    fs.mkdirSync(o);
    const ok = runCli(['reconstruct', '--i', 'optimisation_set.star', '--b', '32', '--bin', '2', '--o', o, '--pipeline_control', `${o}/`], V1);
    expect(ok.status).toBe(0);
    expect(fs.existsSync(path.join(o, 'RELION_JOB_EXIT_SUCCESS'))).toBe(true);
    expect(fs.existsSync(path.join(o, 'note.txt'))).toBe(false);
    const o2 = outDir();
    fs.mkdirSync(o2);
    const bad = runCli(['reconstruct', '--i', 'optimisation_set.star', '--b', '31', '--o', o2, '--pipeline_control', `${o2}/`], V1);
    expect(bad.status).toBe(1);
    expect(fs.existsSync(path.join(o2, 'RELION_JOB_EXIT_FAILURE'))).toBe(true);
    // The coordinator takes the same flag and is reported the same way.
    const o3 = outDir();
    fs.mkdirSync(o3);
    const coord = runCli(['coordinator', '--nats', 'nats://127.0.0.1:9', '--i', 'optimisation_set.star', '--b', '31', '--o', o3, '--pipeline_control', `${o3}/`], V1);
    expect(coord.status).toBe(1);
    expect(fs.existsSync(path.join(o3, 'RELION_JOB_EXIT_FAILURE'))).toBe(true);
  });

  it('warns about unknown flags as RELION does, and reports progress lines when not on a terminal', () => {
    const o = outDir();
    const res = runCli(['reconstruct', '--i', 'optimisation_set.star', '--b', '32', '--bin', '2', '--o', o, '--frobnicate', '3'], V1);
    expect(res.status).toBe(0);
    expect(res.stderr).toMatch(/warning: --frobnicate is not an option/);
    expect(res.stdout).toMatch(/progress: 48\/48 particles \(100%\)/);
    // The last line: time per phase, peak memory and the CPU time of the run.
    expect(res.stdout).toMatch(/time per phase: read inputs [0-9.]+ s, .*; peak memory \(RSS\) \d+ MiB; CPU [0-9.]+ s \(user [0-9.]+, system [0-9.]+\)/);
  });

  it('gives the same maps with one thread as with several particle and finalisation threads', () => {
    const a = outDir();
    const b = outDir();
    const base = ['reconstruct', '--i', 'optimisation_set.star', '--b', '32', '--bin', '2'];
    expect(runCli([...base, '--j', '1', '--j_out', '1', '--j_in', '1', '--o', a], V1).status).toBe(0);
    const many = runCli([...base, '--j', '3', '--j_out', '2', '--j_in', '1', '--o', b], V1);
    expect(many.status).toBe(0);
    expect(many.stdout).toMatch(/2 thread\(s\), estimated peak memory \d+ MiB, insertion in WebAssembly/);
    // Only the summation order differs; float32 files round at ~6e-8 relative.
    expectSameMaps(a, b);
  });

  it('gives the same maps with the JavaScript kernels in the calling thread as with the WebAssembly ones in threads', async () => {
    // threads: 0 runs everything in the calling thread, in JavaScript (the reference kernels);
    // threads run the WebAssembly extraction FFT, CTF·dose and insertion.
    for (const b of [32, 48]) {
      const js = outDir();
      const wasm = outDir();
      // From dist/ (built by the global setup): the threads' entry module is JavaScript there.
      const { DEFAULTS } = (await import(path.join(REPO, 'dist/src/engine/options.js'))) as typeof import('../src/engine/options.js');
      const { reconstruct } = (await import(path.join(REPO, 'dist/src/engine/reconstruct.js'))) as typeof import('../src/engine/reconstruct.js');
      const cwd = process.cwd();
      process.chdir(V1);
      try {
        for (const [o, threads] of [[js, 0], [wasm, 2]] as const) {
          await reconstruct({ ...DEFAULTS, i: 'optimisation_set.star', b, bin: 2, o, commandLine: [], threads, progress: 'none', log: () => {} });
        }
      } finally {
        process.chdir(cwd);
      }
      expectSameMaps(js, wasm);
    }
  });

  it('threads back-project the frames of a tilt series as they are read, and only those', () => {
    // Reads slowed down (TOMORECON_TEST_LOAD_DELAY_MS after every 4 frames): threads that used
    // frames not yet read would back-project zeros and give other maps.
    const a = outDir();
    const b = outDir();
    const base = ['reconstruct', '--i', 'optimisation_set.star', '--b', '32', '--bin', '2', '--j', '2'];
    expect(runCli([...base, '--o', a], V1).status).toBe(0);
    const slow = spawnSync(process.execPath, [CLI, ...base, '--o', b], { cwd: V1, encoding: 'utf8', env: { ...process.env, TOMORECON_TEST_LOAD_DELAY_MS: '40' } });
    expect(slow.status, slow.stderr).toBe(0);
    expectSameMaps(a, b);
  });

  it('--mem caps the whole process: fewer threads when needed, peak RSS within the cap', () => {
    const o = outDir();
    const res = runCli(['reconstruct', '--i', 'optimisation_set.star', '--b', '48', '--j_out', '2', '--j_in', '1', '--mem', '0.12', '--o', o], V1);
    expect(res.status, res.stderr).toBe(0);
    const est = /(\d+) thread\(s\), estimated peak memory (\d+) MiB/.exec(res.stdout)!;
    expect(Number(est[1])).toBe(1);
    expect(Number(est[2])).toBeLessThanOrEqual(0.12 * 1024);
    const rss = Number(/peak memory \(RSS\) (\d+) MiB/.exec(res.stdout)![1]);
    expect(rss).toBeLessThanOrEqual(0.12 * 1024);
  });

  it('prints help with every flag and exits 0', () => {
    const res = runCli(['reconstruct', '--help'], V1);
    expect(res.status).toBe(0);
    for (const f of ['--i', '--p', '--t', '--mot', '--b', '--crop', '--bin', '--SNR', '--sym', '--mem', '--j_out', '--j_in', '--taper', '--cutoff_fract', '--no_ctf', '--no_circle_crop', '--whiten', '--no_backup', '--only_do_unfinished', '--nr_helical_asu', '--helical_rise', '--helical_twist', '--o']) {
      expect(res.stdout).toContain(f);
    }
    // Every flag listed is implemented; none is described as missing.
    expect(res.stdout).not.toMatch(/not yet supported|does not write any/);
  });
});

describe('values RELION accepts that change nothing or little (decisions.md: replicate)', () => {
  const common = ['--b', '32', '--bin', '2', '--j_out', '1', '--j_in', '1'];
  const run = (extra: string[], cwd = V1, inputs = ['--i', 'optimisation_set.star']): { out: string; stderr: string } => {
    const out = outDir();
    const res = runCli(['reconstruct', ...inputs, ...common, ...extra, '--o', out], cwd);
    expect(res.status, res.stderr).toBe(0);
    return { out, stderr: res.stderr };
  };

  it('--crop not below --b (no cropped maps), --SNR 0 (heuristic division), --nr_helical_asu 0 (no helical symmetry)', () => {
    const plain = run([]);
    const given = run(['--crop', '32', '--SNR', '0', '--nr_helical_asu', '0']);
    expect(given.stderr).toContain('warning: --crop 32 is not smaller than --b 32: no cropped maps are written (as RELION)');
    expect(fs.existsSync(path.join(given.out, 'merged_full.mrc'))).toBe(false);
    expectSameMaps(given.out, plain.out);
  });

  it('a negative --taper is a hard edge, as --taper 0; a negative --cutoff_fract keeps every frequency the sphere allows', () => {
    expectSameMaps(run(['--taper', '-1']).out, run(['--taper', '0']).out);
    run(['--cutoff_fract', '-0.01']);
  });

  it('a particle name listed twice: both particles are reconstructed, with a warning', () => {
    const dir = path.join(tmp, 'duplicate-names');
    fs.mkdirSync(dir);
    for (const f of ['tomograms.star', 'tilt_series']) fs.symlinkSync(path.join(V1, f), path.join(dir, f));
    const text = fs.readFileSync(path.join(V1, 'particles.star'), 'utf8');
    // The second particle of TS_01 takes the first one's name.
    const renamed = text.replace(/^(\s*TS_01\s+)TS_01\/2(\s)/m, '$1TS_01/1$2');
    expect(renamed).not.toBe(text);
    fs.writeFileSync(path.join(dir, 'particles.star'), renamed);
    fs.symlinkSync(path.join(V1, 'particles.star'), path.join(dir, 'unique.star'));
    const dup = run([], dir, ['--p', 'particles.star', '--t', 'tomograms.star']);
    expect(dup.stderr).toMatch(/particle TS_01\/1 appears twice \(lines \d+ and \d+\); both are reconstructed/);
    const unique = run([], dir, ['--p', 'unique.star', '--t', 'tomograms.star']);
    expectSameMaps(dup.out, unique.out);
  });
});

describe("RELION's command line", () => {
  const common = ['--i', 'optimisation_set.star', '--b', '32', '--bin', '2', '--j_out', '1', '--j_in', '1'];

  it('as RELION reads it: exponent negatives, switches without values, stray words, repeats, --theme', () => {
    const a = outDir();
    const res = runCli(['reconstruct', ...common, '--nr_helical_asu', '2', '--helical_rise', '-1e-3', '--whiten', 'false', 'stray', '--b', '32', '--theme', 'classic', '--o', a], V1);
    expect(res.status, res.stderr).toBe(0);
    expect(res.stderr).toContain("warning: 'false' after --whiten is ignored: a switch takes no value (--whiten is on)");
    expect(res.stderr).toContain("warning: 'stray' is neither an option nor an option's value and is ignored");
    expect(res.stderr).toContain('warning: --b is given more than once; the last one counts');
    expect(res.stderr).not.toContain('--theme');
    expect(res.stdout).toContain('symmetrising with 2 operators (C1, 2 helical units)');
    // --whiten false whitens, as in RELION: the maps of --whiten.
    const b = outDir();
    expect(runCli(['reconstruct', ...common, '--nr_helical_asu', '2', '--helical_rise', '-0.001', '--whiten', '--o', b], V1).status).toBe(0);
    expectSameMaps(a, b);
    for (const args of [[], ['-h'], ['--list_themes']]) {
      const r = runCli(['reconstruct', ...args], V1);
      expect(r.status, `${args}: ${r.stderr}`).toBe(0);
      expect(r.stdout.length).toBeGreaterThan(0);
    }
  });

  it('reports a command-line error to the pipeliner too, creating the job directory as RELION does', () => {
    const o = path.join(outDir(), 'job');
    const res = runCli(['reconstruct', '--i', 'optimisation_set.star', '--o', `${o}/`, '--b', 'x', '--pipeline_control', `${o}/`], V1);
    expectCleanFailure(res, /--b: expected a number, got 'x'/);
    expect(fs.existsSync(path.join(o, 'RELION_JOB_EXIT_FAILURE'))).toBe(true);
  });

  it('runs under the names relion_tomo_reconstruct_particle and _mpi (only rank 0 works)', () => {
    const links = path.join(tmp, 'relion-bin');
    fs.mkdirSync(links, { recursive: true });
    for (const n of ['relion_tomo_reconstruct_particle', 'relion_tomo_reconstruct_particle_mpi']) fs.symlinkSync(path.join(REPO, 'bin/tomorecon.js'), path.join(links, n));
    const o = outDir();
    const res = spawnSync(path.join(links, 'relion_tomo_reconstruct_particle'), [...common, '--o', o], { cwd: V1, encoding: 'utf8' });
    expect(res.status, res.stderr).toBe(0);
    expect(fs.readFileSync(path.join(o, 'note.txt'), 'utf8')).toBe(`Command:\n\nrelion_tomo_reconstruct_particle ${[...common, '--o', o].join(' ')} \n`);
    const mpi = (rank: string, dir: string): ReturnType<typeof spawnSync> =>
      spawnSync(path.join(links, 'relion_tomo_reconstruct_particle_mpi'), [...common, '--o', dir], { cwd: V1, encoding: 'utf8', env: { ...process.env, OMPI_COMM_WORLD_RANK: rank } });
    const idle = outDir();
    const r1 = mpi('1', idle);
    expect(r1.status).toBe(0);
    expect(String(r1.stdout)).toContain('rank 1: tomorecon reconstructs in rank 0');
    expect(fs.existsSync(idle)).toBe(false);
    const busy = outDir();
    expect(mpi('0', busy).status).toBe(0);
    expect(fs.existsSync(path.join(busy, 'merged.mrc'))).toBe(true);
  });

  it("stops at the pipeliner's abort before the next tomogram, keeping what is done for --only_do_unfinished", async () => {
    const o = outDir();
    const args = ['reconstruct', ...common, '--o', o, '--pipeline_control', `${o}/`];
    // Before anything: status 2, the ABORTED file, no maps.
    fs.mkdirSync(o, { recursive: true });
    fs.writeFileSync(path.join(o, 'RELION_JOB_ABORT_NOW'), '');
    const first = runCli(args, V1);
    expect(first.status, first.stderr).toBe(2);
    expect(first.stderr).toMatch(/tomorecon: aborted: .*RELION_JOB_ABORT_NOW found: stopped before tomogram TS_01 \(0 of 2 tomograms done\)/);
    expect(fs.existsSync(path.join(o, 'RELION_JOB_EXIT_ABORTED'))).toBe(true);
    expect(fs.existsSync(path.join(o, 'merged.mrc'))).toBe(false);
    // While the first tomogram is read (slowly): stops before the second, its sums checkpointed.
    fs.rmSync(path.join(o, 'RELION_JOB_ABORT_NOW'));
    fs.rmSync(path.join(o, 'RELION_JOB_EXIT_ABORTED'));
    const child = spawn(process.execPath, [path.join(REPO, 'bin/tomorecon.js'), ...args], { cwd: V1, env: { ...process.env, TOMORECON_TEST_LOAD_DELAY_MS: '400' } });
    let err = '';
    let out = '';
    child.stderr.on('data', (d) => (err += d));
    child.stdout.on('data', (d) => (out += d));
    const code = new Promise<number | null>((resolve) => child.on('exit', resolve));
    // The plan's line comes shortly before the first tomogram's check; its load then takes ≥ 3.2 s
    // (8 reads of 4 tilts, 400 ms each): the file appears while it is read, with margins either side.
    while (!out.includes('estimated peak memory') && child.exitCode === null) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 1000));
    fs.writeFileSync(path.join(o, 'RELION_JOB_ABORT_NOW'), '');
    expect(await code, err).toBe(2);
    expect(err).toContain('stopped before tomogram TS_02 (1 of 2 tomograms done)');
    expect(fs.existsSync(path.join(o, 'RELION_JOB_EXIT_ABORTED'))).toBe(true);
    fs.rmSync(path.join(o, 'RELION_JOB_ABORT_NOW'));
    const resumed = runCli([...args, '--only_do_unfinished'], V1);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain('resuming: 1 of 2 tomograms already done');
    const clean = outDir();
    expect(runCli(['reconstruct', ...common, '--o', clean], V1).status).toBe(0);
    expectSameMaps(o, clean);
  });
});
