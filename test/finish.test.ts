/**
 * The end of a run and what it leaves: the final sums checkpointed before a (long) symmetrisation,
 * no FSC from an earlier run's half maps, temporary files of a killed run removed at the next
 * start, an unreadable checkpoint reported in one line.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TomoError } from '../src/errors.js';
import { readCheckpoint } from '../src/engine/checkpoint.js';
import { finishRun } from '../src/engine/finish.js';
import { zeroHalves } from '../src/engine/local.js';
import { DEFAULTS, ReconstructOptions } from '../src/engine/options.js';
import { PhaseTimes } from '../src/engine/phases.js';
import { planRun } from '../src/engine/plan.js';
import { removeStaleTempFiles } from '../src/formats/atomicWrite.js';
import { CONFORMANCE, runCli } from './helpers/paths.js';
import { v1WithoutHalfSets } from './helpers/variants.js';

const V1 = path.join(CONFORMANCE, 'V1');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tomorecon-finish-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Phases in the order they start. */
class PhaseOrder extends PhaseTimes {
  readonly started: string[] = [];
  override time<T>(phase: string, fn: () => T): T {
    this.started.push(phase);
    return super.time(phase, fn);
  }
  override async timeAsync<T>(phase: string, fn: () => Promise<T>): Promise<T> {
    this.started.push(phase);
    return super.timeAsync(phase, fn);
  }
}

describe('the final checkpoint', () => {
  const cwd = process.cwd();
  afterAll(() => process.chdir(cwd));

  it.each([
    ['C2', 'before symmetrisation'],
    ['C1', 'during the finalisation (nothing to symmetrise)'],
  ])('with --sym %s is written %s', async (sym) => {
    process.chdir(V1);
    const out = path.join(tmp, `final-${sym}`);
    fs.mkdirSync(path.join(out, 'temp'), { recursive: true });
    const o: ReconstructOptions = { ...DEFAULTS, i: 'optimisation_set.star', b: 32, o: out, sym, commandLine: [], threads: 0 };
    const plan = planRun(o);
    const phases = new PhaseOrder();
    let saves = 0;
    await finishRun(o, plan, zeroHalves(32), {
      symmetryThreads: 0,
      pool: null,
      checkpointFile: path.join(out, 'temp', 'tomorecon_sums.ckpt'),
      saveSums: () => void saves++,
      phases,
      log: () => {},
    });
    expect(saves).toBe(1);
    const at = phases.started.indexOf('checkpoints');
    const sym0 = phases.started.indexOf('symmetrisation');
    expect(at).toBeGreaterThanOrEqual(0);
    if (sym === 'C1') expect(at).toBeGreaterThan(sym0);
    else expect(at).toBeLessThan(sym0);
  });
});

describe('outputs of an earlier run in --o', () => {
  it('a run without half sets reports no FSC from the half maps an earlier run left', () => {
    // V1 without rlnRandomSubset: every particle in one set, no half maps written.
    const data = path.join(tmp, 'V1-nohalves');
    v1WithoutHalfSets(data);
    const out = path.join(tmp, 'halves-then-none');
    const args = ['reconstruct', '--i', 'optimisation_set.star', '--b', '32', '--o', out];
    const first = runCli(args, V1);
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toContain('half-map FSC 0.143');
    expect(fs.existsSync(path.join(out, 'fsc.json'))).toBe(true);
    const second = runCli(args, data);
    expect(second.status, second.stderr).toBe(0);
    expect(second.stderr).toContain('have no rlnRandomSubset');
    expect(second.stdout).not.toContain('half-map FSC');
    expect(fs.existsSync(path.join(out, 'fsc.json'))).toBe(false);
    expect(fs.existsSync(path.join(out, 'fsc.star'))).toBe(false);
  });

  it('temporary files of a killed run are removed at the next start, those of running processes kept', () => {
    const out = path.join(tmp, 'stale');
    fs.mkdirSync(path.join(out, 'temp'), { recursive: true });
    // The pid of a process that has exited.
    const gone = spawnSync(process.execPath, ['-e', '0']).pid!;
    const stale = [path.join(out, `.merged.mrc.tmp-${gone}-0123456789ab`), path.join(out, 'temp', `.tomorecon_sums.ckpt.tmp-${gone}-ba9876543210`)];
    const kept = [path.join(out, `.half1.mrc.tmp-${process.pid}-00000000abcd`), path.join(out, `.notes.tmp-${gone}-xyz`), path.join(out, 'keep.mrc')];
    for (const f of [...stale, ...kept]) fs.writeFileSync(f, 'x');
    expect(removeStaleTempFiles(path.join(tmp, 'no-such-dir'))).toBe(0);
    const res = runCli(['reconstruct', '--i', 'optimisation_set.star', '--b', '32', '--o', out], V1);
    expect(res.status, res.stderr).toBe(0);
    expect(res.stdout).toContain(`removed 2 temporary file(s) that an interrupted run left in ${out}`);
    for (const f of stale) expect(fs.existsSync(f), f).toBe(false);
    for (const f of kept) expect(fs.existsSync(f), f).toBe(true);
    expect(fs.readdirSync(out).filter((f) => f.includes('.tmp-') && !kept.includes(path.join(out, f)))).toEqual([]);
  });

  it('an unreadable checkpoint is one clear error naming it', () => {
    const out = path.join(tmp, 'bad-checkpoint');
    const file = path.join(out, 'temp', 'tomorecon_sums.ckpt');
    fs.mkdirSync(file, { recursive: true });
    let err: unknown;
    try {
      readCheckpoint(file, 32);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TomoError);
    expect((err as Error).message).toContain(`cannot read the checkpoint ${file}`);
    const res = runCli(['reconstruct', '--i', 'optimisation_set.star', '--b', '32', '--o', out, '--only_do_unfinished'], V1);
    expect(res.status).not.toBe(0);
    expect(res.stderr).toContain(`cannot read the checkpoint ${file}`);
    expect(res.stderr).not.toMatch(/\n\s+at /);
  });
});
