/**
 * A real single-node Slurm (Debian's slurmctld, slurmd and munge, configured here on free
 * loopback ports) runs slurm/tomorecon-array.sbatch on the V1 conformance set: task 0 starts
 * nats-server and the coordinator, tasks 1–2 are workers that find it through the rendezvous file.
 * The coordinator waits for both workers (--min-workers 2). The maps must equal the local engine's. Needs root (CI runs as root; .ci/run installs the
 * packages); elsewhere the test is skipped and says why.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pearson } from '../src/analysis/fsc.js';
import { readMrc } from '../src/formats/mrc.js';
import { CLI, CONFORMANCE, REPO, runCli } from './helpers/paths.js';
import { freePort, sleep } from './helpers/nats.js';

const BINARIES = ['/usr/sbin/slurmctld', '/usr/sbin/slurmd', '/usr/sbin/munged', '/usr/bin/sbatch', '/usr/bin/squeue', '/usr/bin/sinfo'];
const missing = BINARIES.filter((b) => !fs.existsSync(b));
const reason = process.getuid?.() !== 0 ? 'not root' : missing.length ? `missing ${missing.join(', ')} (apt-get install slurmctld slurmd munge)` : '';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tomorecon-slurm-'));
const conf = path.join(tmp, 'slurm.conf');
const env = { ...process.env, SLURM_CONF: conf };
let startedMunge = false;

function mungeWorks(): boolean {
  return spawnSync('sh', ['-c', 'munge -n | unmunge'], { encoding: 'utf8' }).status === 0;
}

function pidFrom(file: string): number | null {
  try {
    return Number(fs.readFileSync(file, 'utf8').trim()) || null;
  } catch {
    return null;
  }
}

beforeAll(async () => {
  if (reason) return;
  const host = os.hostname().split('.')[0];
  const [ctld, slurmd] = [await freePort(), await freePort()];
  for (const d of ['state', 'spool', 'log']) fs.mkdirSync(path.join(tmp, d));
  fs.writeFileSync(
    conf,
    [
      'ClusterName=tomorecontest',
      `SlurmctldHost=${host}(127.0.0.1)`,
      'SlurmUser=root',
      'SlurmdUser=root',
      `SlurmctldPort=${ctld}`,
      `SlurmdPort=${slurmd}`,
      `StateSaveLocation=${tmp}/state`,
      `SlurmdSpoolDir=${tmp}/spool`,
      `SlurmctldPidFile=${tmp}/slurmctld.pid`,
      `SlurmdPidFile=${tmp}/slurmd.pid`,
      `SlurmctldLogFile=${tmp}/log/slurmctld.log`,
      `SlurmdLogFile=${tmp}/log/slurmd.log`,
      'AuthType=auth/munge',
      'CredType=cred/munge',
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_CPU',
      'SchedulerType=sched/backfill',
      'ReturnToService=2',
      // The test node declares 8 CPUs on a 2-core machine so that three 1-CPU tasks run at once.
      'SlurmdParameters=config_overrides',
      'MpiDefault=none',
      'JobCompType=jobcomp/none',
      'AccountingStorageType=accounting_storage/none',
      `NodeName=${host} NodeAddr=127.0.0.1 CPUs=8 RealMemory=16000 State=UNKNOWN`,
      `PartitionName=test Nodes=${host} Default=YES MaxTime=INFINITE State=UP`,
      '',
    ].join('\n'),
  );
  if (!mungeWorks()) {
    fs.mkdirSync('/run/munge', { recursive: true });
    execFileSync('/usr/sbin/munged', ['--force']);
    startedMunge = true;
    for (let i = 0; i < 50 && !mungeWorks(); i++) await sleep(100);
  }
  execFileSync('/usr/sbin/slurmctld', ['-f', conf], { env });
  execFileSync('/usr/sbin/slurmd', ['-f', conf], { env });
  for (let i = 0; i < 100; i++) {
    const s = spawnSync('/usr/bin/sinfo', ['-h', '-o', '%t'], { env, encoding: 'utf8' });
    if (s.status === 0 && /idle|mix/.test(s.stdout)) return;
    await sleep(200);
  }
  throw new Error(`the test Slurm did not come up:\n${fs.readFileSync(path.join(tmp, 'log/slurmctld.log'), 'utf8').slice(-2000)}`);
}, 60_000);

afterAll(async () => {
  if (!reason) {
    spawnSync('/usr/bin/scancel', ['-u', 'root'], { env });
    for (const f of ['slurmd.pid', 'slurmctld.pid']) {
      const pid = pidFrom(path.join(tmp, f));
      if (pid) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          /* already gone */
        }
      }
    }
    await sleep(500);
    if (startedMunge) spawnSync('pkill', ['-x', 'munged']);
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('Slurm job array', () => {
  it.skipIf(Boolean(reason))(`runs coordinator + 2 workers and reproduces the local maps${reason ? ` (skipped: ${reason})` : ''}`, async () => {
    const V1 = path.join(CONFORMANCE, 'V1');
    const local = path.join(tmp, 'local');
    expect(runCli(['reconstruct', '--i', 'optimisation_set.star', '--b', '48', '--o', local], V1).status).toBe(0);

    const out = path.join(tmp, 'slurm-out');
    const natsPort = await freePort();
    const submit = spawnSync(
      '/usr/bin/sbatch',
      [
        '--parsable',
        '--array=0-2',
        '--cpus-per-task=1',
        '--mem=2000',
        `--chdir=${V1}`,
        `--output=${tmp}/job-%A_%a.log`,
        // --min-workers 2: Slurm may start a worker task seconds after the others, and this run
        // takes about a second; the coordinator waits so that both workers take part.
        `--export=ALL,TOMORECON=${CLI},TOMORECON_BIND=127.0.0.1,TOMORECON_NATS_PORT=${natsPort},TOMORECON_WAIT=120,TOMORECON_COORDINATOR_EXTRA=--min-workers 2`,
        path.join(REPO, 'slurm/tomorecon-array.sbatch'),
        '--i', 'optimisation_set.star', '--b', '48', '--o', out,
      ],
      { env, encoding: 'utf8' },
    );
    expect(submit.status, submit.stderr).toBe(0);
    const jobId = submit.stdout.trim().split(';')[0];
    const deadline = Date.now() + 240_000;
    for (;;) {
      const q = spawnSync('/usr/bin/squeue', ['-h', '-j', jobId], { env, encoding: 'utf8' });
      if (q.stdout.trim() === '') break;
      if (Date.now() > deadline) throw new Error(`job ${jobId} still queued/running:\n${q.stdout}`);
      await sleep(1000);
    }
    const logs = fs
      .readdirSync(tmp)
      .filter((f) => f.startsWith(`job-${jobId}_`))
      .map((f) => `--- ${f}\n${fs.readFileSync(path.join(tmp, f), 'utf8')}`)
      .join('\n');
    expect(logs).not.toMatch(/tomorecon: error|internal error/);
    expect(fs.existsSync(path.join(out, 'merged.mrc')), logs).toBe(true);
    for (const f of ['half1.mrc', 'half2.mrc', 'merged.mrc', 'data_merged.mrc', 'weight_merged.mrc']) {
      const r = pearson(readMrc(path.join(out, f)).data, readMrc(path.join(local, f)).data);
      expect(r, `${f}: r = ${r}`).toBeGreaterThanOrEqual(0.999999);
    }
    // Both workers took part: each logs its end.
    expect((logs.match(/run finished; exiting/g) ?? []).length, logs).toBe(2);
    // The rendezvous now says the run ended, so a worker task started late would exit at once.
    expect(fs.readFileSync(path.join(out, '.tomorecon-rendezvous'), 'utf8')).toBe(`RUN_ID=tomorecon-${jobId}\nFINISHED=0\n`);
  }, 300_000);
});
