/**
 * The sbatch scripts' ends of a run, outside Slurm (the scripts read only environment variables;
 * test/slurm.test.ts runs them under a real Slurm). A Slurm array starts its tasks when it can:
 * a worker task may start after the coordinator has finished. It must then exit at once with
 * status 0 and say why, not wait for a coordinator that will never come.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { CLI, CONFORMANCE, REPO } from './helpers/paths.js';
import { CliProcess, NATS_SERVER, freePort, natsTestBed, sleep } from './helpers/nats.js';

const ARRAY = path.join(REPO, 'slurm/tomorecon-array.sbatch');
const WORKERS = path.join(REPO, 'slurm/tomorecon-workers.sbatch');
const bed = natsTestBed('slurm-scripts');
const scripts: CliProcess[] = [];

/** Runs an sbatch script with bash, in its own process group (killed after each test). */
function runScript(script: string, args: string[], env: Record<string, string>, cwd = bed.tmp): CliProcess {
  const p = new CliProcess(
    spawn('bash', [script, ...args], {
      cwd,
      env: { ...process.env, TOMORECON_BIND: '127.0.0.1', NATS_SERVER, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    }),
  );
  scripts.push(p);
  return p;
}

afterEach(async () => {
  for (const p of scripts.splice(0)) {
    if (p.running) {
      process.kill(-p.pid, 'SIGKILL');
      await p.exited;
    }
  }
});

function rendezvousIn(name: string): { out: string; file: string } {
  const out = path.join(bed.tmp, name);
  fs.mkdirSync(out, { recursive: true });
  return { out, file: path.join(out, '.tomorecon-rendezvous') };
}

describe('tomorecon-array.sbatch', () => {
  it('task 0 leaves a rendezvous that says the run ended, with the coordinator exit status and without the token', async () => {
    const { out, file } = rendezvousIn('ended-0');
    // The coordinator fails at once (no such input): task 0 still starts and stops nats-server.
    const p = runScript(ARRAY, ['--i', 'no_such_optimisation_set.star', '--b', '32', '--o', out], {
      SLURM_ARRAY_TASK_ID: '0',
      SLURM_ARRAY_JOB_ID: '41',
      TOMORECON: CLI,
      TOMORECON_NATS_PORT: String(await freePort()),
    });
    const { code } = await p.exit(30_000);
    expect(code, p.stderr).not.toBe(0);
    expect(p.stderr).toContain('no_such_optimisation_set.star');
    expect(fs.readFileSync(file, 'utf8')).toBe(`RUN_ID=tomorecon-41\nFINISHED=${code}\n`);
    expect((fs.statSync(file).mode & 0o777).toString(8)).toBe('600');
  });

  it('runs NATS_SERVER given as a command with arguments, keeps the token off every command line, and reports a kill as 143', async () => {
    const { out, file } = rendezvousIn('running-0');
    // A coordinator that waits for a worker; --o=DIR as tomorecon takes it.
    const p = runScript(
      ARRAY,
      ['--i', 'optimisation_set.star', '--b', '32', `--o=${out}`],
      {
        SLURM_ARRAY_TASK_ID: '0',
        SLURM_ARRAY_JOB_ID: '45',
        TOMORECON: CLI,
        NATS_SERVER: `env ${NATS_SERVER}`,
        TOMORECON_NATS_PORT: String(await freePort()),
        TOMORECON_COORDINATOR_EXTRA: '--min-workers 1',
      },
      path.join(CONFORMANCE, 'V1'),
    );
    await p.waitFor((x) => x.count('waiting for workers') > 0, 30_000, 'the coordinator to wait for workers');
    const token = /^NATS_TOKEN=(\w+)$/m.exec(fs.readFileSync(file, 'utf8'))?.[1];
    expect(token, fs.readFileSync(file, 'utf8')).toMatch(/^[0-9a-f]{48}$/);
    const cmdlines = fs
      .readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .map((d) => {
        try {
          return fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ');
        } catch {
          return '';
        }
      });
    const conf = cmdlines.find((c) => c.includes('nats-server') && c.includes('-c '));
    expect(conf).toBeDefined();
    expect(cmdlines.filter((c) => c.includes(token!))).toEqual([]);
    // Its configuration file (the token) is gone once nats-server has read it.
    expect(fs.existsSync(/-c (\S+)/.exec(conf!)![1])).toBe(false);
    // As Slurm (scancel, time limit): SIGTERM to every process of the task.
    process.kill(-p.pid, 'SIGTERM');
    expect((await p.exit(10_000)).code).toBe(143);
    expect(fs.readFileSync(file, 'utf8')).toBe('RUN_ID=tomorecon-45\nFINISHED=143\n');
  });

  it('says so when nats-server cannot start (its port is taken)', async () => {
    const { out, file } = rendezvousIn('port-taken');
    const taken = net.createServer().listen(0, '127.0.0.1');
    await new Promise((r) => taken.once('listening', r));
    try {
      const port = (taken.address() as net.AddressInfo).port;
      const p = runScript(ARRAY, ['--i', 'x.star', '--b', '32', '--o', out], { SLURM_ARRAY_TASK_ID: '0', SLURM_ARRAY_JOB_ID: '46', TOMORECON: 'false', TOMORECON_NATS_PORT: String(port) });
      expect((await p.exit(20_000)).code).toBe(1);
      expect(p.stderr).toContain(`tomorecon-array: nats-server did not start on 127.0.0.1:${port} (is the port in use? set TOMORECON_NATS_PORT)`);
      expect(fs.readFileSync(file, 'utf8')).toBe('RUN_ID=tomorecon-46\nFINISHED=1\n');
    } finally {
      taken.close();
    }
  });

  it('a worker task that starts after the run ended exits at once with status 0 and starts no worker', async () => {
    const { out, file } = rendezvousIn('ended-1');
    fs.writeFileSync(file, 'RUN_ID=tomorecon-42\nFINISHED=0\n');
    // TOMORECON=false: starting a worker would fail the task.
    const p = runScript(ARRAY, ['--o', out], { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_JOB_ID: '42', TOMORECON: 'false', TOMORECON_WAIT: '30' });
    const t0 = Date.now();
    expect((await p.exit(10_000)).code, p.stderr).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(p.stderr).toContain('run tomorecon-42 ended (coordinator exit status 0) before this worker started; nothing to do');
  });

  it('a worker that had not joined when the run ended is stopped, and the task exits with status 0', async () => {
    const { out, file } = rendezvousIn('ended-2');
    fs.writeFileSync(file, `NATS_URL=${bed.nats.url}\nRUN_ID=tomorecon-43\nNATS_TOKEN=\n`);
    const p = runScript(ARRAY, ['--o', out], { SLURM_ARRAY_TASK_ID: '2', SLURM_ARRAY_JOB_ID: '43', TOMORECON: CLI });
    // No coordinator serves run tomorecon-43: the worker keeps asking.
    await p.waitFor((x) => x.count('coordinator not reachable; retrying') > 0, 20_000, 'the worker to look for its coordinator');
    fs.writeFileSync(file, 'RUN_ID=tomorecon-43\nFINISHED=0\n');
    const t0 = Date.now();
    expect((await p.exit(15_000)).code, p.stderr).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(p.stderr).toContain('run tomorecon-43 ended (coordinator exit status 0) before this worker could join; stopped it');
    await sleep(100);
    expect(p.stderr).not.toContain('run finished; exiting');
  });
});

describe('tomorecon-workers.sbatch', () => {
  it('exits with status 0 when the rendezvous says the run ended', async () => {
    const { file } = rendezvousIn('ended-3');
    fs.writeFileSync(file, 'RUN_ID=tomorecon-44\nFINISHED=1\n');
    const p = runScript(WORKERS, [], { TOMORECON_RENDEZVOUS: file, TOMORECON: 'false' });
    expect((await p.exit(10_000)).code, p.stderr).toBe(0);
    expect(p.stderr).toContain(`the run of ${file} already ended (coordinator exit status 1); nothing to do`);
  });
});
