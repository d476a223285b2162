/**
 * Distributed runner, acceptance: a coordinator and three workers (real processes, a real
 * nats-server on a free loopback port) reconstruct the V1/c1 and V1/crop conformance runs with
 * the same maps as the local engine; so does one worker with two compute threads started before
 * the coordinator; a worker with a wrong NATS credential is refused.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nkeys } from 'nats';
import { pearson } from '../src/analysis/fsc.js';
import { readMrc } from '../src/formats/mrc.js';
import { simulateDataset } from '../src/simulate/dataset.js';
import { SIM_DEFAULTS } from '../src/simulate/params.js';
import { CONFORMANCE, runCli } from './helpers/paths.js';
import { NatsServer, startNats, natsTestBed } from './helpers/nats.js';
import { TestCerts, makeTestCerts, opensslAvailable } from './helpers/certs.js';
import { jwtAuthority } from './helpers/natsJwt.js';

const runs = JSON.parse(fs.readFileSync(path.join(CONFORMANCE, 'runs.json'), 'utf8')) as Record<
  string,
  Record<string, { dataset: string; args: string; outputs: string[] }>
>;
const V1 = path.join(CONFORMANCE, 'V1');
const bed = natsTestBed('distributed');
const { tmp, procs } = bed;


describe.each(['c1', 'crop'])('coordinator + 3 workers, V1/%s', (name) => {
  it('gives the local engine maps (r ≥ 0.999999) and passes conformance', async () => {
    const run = runs.V1[name];
    const args = run.args.split(/\s+/);
    const local = path.join(tmp, `local_${name}`);
    const res = runCli(['reconstruct', ...args, '--o', local], V1);
    expect(res.status, res.stderr).toBe(0);

    const out = path.join(tmp, `dist_${name}`);
    const runId = `conf-${name}-${process.pid}`;
    const metrics = ['--metrics-port', '0'];
    // --min-workers 3: no chunk goes out before all three have joined (the test checks that all
    // three take part).
    const coordinator = procs.cli(['coordinator', '--nats', bed.nats.url, '--run-id', runId, '--chunk-size', '2', '--min-workers', '3', ...metrics, ...args, '--o', out], V1);
    // Workers run elsewhere (shared file system, absolute paths); each corrupts its first data
    // segment once, so the checksum and re-send path is exercised.
    const startWorker = () =>
      // A short pause per chunk, so that the first worker cannot take every chunk before the
      // others have asked.
      procs.cli(['worker', '--nats', bed.nats.url, '--run-id', runId, ...metrics], tmp, {
        TOMORECON_TEST_CORRUPT_SEGMENT: '0',
        TOMORECON_TEST_CHUNK_DELAY_MS: '100',
      });
    const workers = [startWorker(), startWorker()];
    // Two of three joined: the coordinator waits, and hands out nothing meanwhile.
    await coordinator.waitFor((p) => p.count('worker joined') === 2, 30_000, 'two workers to join');
    await coordinator.waitFor((p) => p.count('waiting for workers before handing out chunks (--min-workers)') > 0, 10_000, 'the wait to be logged');
    await new Promise((r) => setTimeout(r, 500));
    expect(coordinator.count('chunk assigned')).toBe(0);
    workers.push(startWorker());
    // Prometheus endpoints (loopback only by default).
    for (const [p, metric] of [[coordinator, /^tomorecon_chunks\{[^}]*state="pending"/m], [workers[0], /^tomorecon_worker_chunks_total\{/m]] as const) {
      await p.waitFor((x) => x.count('metrics served') === 1, 20_000, 'the metrics endpoint');
      const url = p.lines().find((l) => l.msg === 'metrics served')!.fields!.url as string;
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const body = await (await fetch(url)).text();
      expect(body).toMatch(metric);
      expect(body).toContain('process_resident_memory_bytes');
    }
    const ended = await coordinator.exit(90_000);
    expect(ended.code, coordinator.stderr).toBe(0);
    for (const w of workers) expect((await w.exit(20_000)).code, w.stderr).toBe(0);

    for (const file of run.outputs) {
      const ours = readMrc(path.join(out, file));
      const ref = readMrc(path.join(local, file));
      expect([ours.header.nx, ours.header.ny, ours.header.nz], file).toEqual([ref.header.nx, ref.header.ny, ref.header.nz]);
      const r = pearson(ours.data, ref.data);
      expect(r, `${file}: r = ${r}`).toBeGreaterThanOrEqual(0.999999);
      if (file !== 'weight_merged.mrc') {
        const relion = readMrc(path.join(CONFORMANCE, 'relion', 'V1', name, file));
        expect(pearson(ours.data, relion.data), `${file} vs RELION`).toBeGreaterThanOrEqual(file.startsWith('weight_') ? 0.9999 : 0.999);
      }
    }

    const report = JSON.parse(fs.readFileSync(path.join(out, 'distributed_report.json'), 'utf8'));
    expect(report.status).toBe('finished');
    expect(report.totals.committedParticles).toBe(48);
    expect(report.chunks.every((c: { attempts: { outcome: string }[] }) => c.attempts.filter((a) => a.outcome === 'committed').length === 1)).toBe(true);
    // Every worker took part, and a corrupted segment was detected and sent again.
    const ids = new Set(report.workers.filter((w: { chunksCommitted: number }) => w.chunksCommitted > 0).map((w: { id: string }) => w.id));
    expect(ids.size).toBe(3);
    // No chunk went out before the third worker joined.
    const lines = coordinator.lines();
    const thirdJoin = lines.flatMap((l, i) => (l.msg === 'worker joined' ? [i] : []))[2] ?? -1;
    const firstChunk = lines.findIndex((l) => l.msg === 'chunk assigned');
    expect(thirdJoin).toBeGreaterThanOrEqual(0);
    expect(firstChunk).toBeGreaterThan(thirdJoin);
    // Chunks were taken ahead (queued behind a running one), and the maps above include them.
    expect(coordinator.lines().filter((l) => l.msg === 'chunk assigned' && l.fields?.ahead === true).length).toBeGreaterThan(0);
    const all = [coordinator, ...workers].map((p) => p.stderr).join('\n');
    expect(all).toContain('checksum mismatch on a received segment');
    // The workers' threads insert slices with the WebAssembly kernel.
    for (const w of workers) expect(w.lines().find((l) => l.msg === 'joined the run')?.fields?.insertion).toBe('WebAssembly');
    // Every process ends with its CPU time (the benchmark adds them up).
    for (const [p, msg] of [[coordinator, 'done'], ...workers.map((w) => [w, 'run finished; exiting'] as const)] as const) {
      const f = p.lines().find((l) => l.msg === msg)?.fields;
      expect(f?.cpuUserS, msg).toBeGreaterThan(0);
      expect(f?.cpuSystemS, msg).toBeGreaterThanOrEqual(0);
    }
    expect(all).toContain('segment refused by the receiver');
  });
});

describe('a worker with two compute threads, started before the coordinator', () => {
  it('joins when the coordinator serves, takes chunks ahead, and gives the local engine maps', async () => {
    const run = runs.V1.c1;
    const args = run.args.split(/\s+/);
    const local = path.join(tmp, 'local_threads');
    const res = runCli(['reconstruct', ...args, '--o', local], V1);
    expect(res.status, res.stderr).toBe(0);
    const runId = `threads-${process.pid}`;
    const worker = procs.cli(['worker', '--nats', bed.nats.url, '--run-id', runId, '--threads', '2'], tmp, { TOMORECON_LOG: 'debug' });
    await worker.waitFor((w) => w.count('worker started') === 1, 20_000, 'the worker to start');
    const out = path.join(tmp, 'dist_threads');
    const coordinator = procs.cli(['coordinator', '--nats', bed.nats.url, '--run-id', runId, '--chunk-size', '1', ...args, '--o', out], V1);
    expect((await coordinator.exit(90_000)).code, coordinator.stderr).toBe(0);
    expect((await worker.exit(20_000)).code, worker.stderr).toBe(0);
    const joined = worker.lines().find((l) => l.msg === 'joined the run')!;
    expect(joined.fields!.threads).toBe(2);
    // Both threads started at launch reported their warm-up done, once.
    const ready = worker.lines().filter((l) => l.msg === 'compute threads ready');
    expect(ready.length).toBe(1);
    expect(ready[0].fields!.threads).toBe(2);
    // Woken by the coordinator's broadcast, not by its join back-off (≥ 100 ms).
    const serving = Date.parse(coordinator.lines().find((l) => l.msg === 'waiting for workers')!.ts!);
    expect(Date.parse(joined.ts!) - serving).toBeLessThan(100);
    expect(coordinator.lines().filter((l) => l.msg === 'chunk assigned' && l.fields?.ahead === true).length).toBeGreaterThan(2);
    // The first chunks are held (the worker's speed is not known yet) and, a thread's accumulators
    // still empty, counted by exchanging its sets rather than by a pass over them (at most once per
    // thread: its accumulators then hold sums); the last ones are held too, and folded.
    const counted = worker.lines().filter((l) => /^chunk counted/.test(l.msg ?? ''));
    const exchanged = counted.filter((l) => l.msg === 'chunk counted (sets exchanged)').length;
    expect(exchanged).toBeGreaterThanOrEqual(1);
    expect(exchanged).toBeLessThanOrEqual(2);
    expect(counted.length).toBeGreaterThan(exchanged);
    // The chunk whose verdict came with the round's plan went into the round from its scratch
    // set, without a fold first.
    expect(worker.count('chunk counted into the round from its scratch set')).toBeGreaterThanOrEqual(1);
    for (const file of run.outputs) {
      const r = pearson(readMrc(path.join(out, file)).data, readMrc(path.join(local, file)).data);
      expect(r, `${file}: r = ${r}`).toBeGreaterThanOrEqual(0.999999);
    }
  });
});

describe('unreadable input on a worker', () => {
  it('fails the run with one clear message, without retrying', async () => {
    const data = path.join(tmp, 'broken');
    simulateDataset({ ...SIM_DEFAULTS, seed: 3, tomos: 1, particles: 4 }, data);
    const runId = `broken-${process.pid}`;
    const out = path.join(tmp, 'broken_out');
    const coordinator = procs.cli(['coordinator', '--nats', bed.nats.url, '--run-id', runId, '--i', 'optimisation_set.star', '--b', '48', '--o', out], data);
    await coordinator.waitFor((c) => c.count('waiting for workers') === 1, 30_000, 'the coordinator to plan the run');
    // The stack disappears from the shared file system after planning.
    const stack = path.join(data, 'tilt_series', 'TS_01.mrcs');
    fs.renameSync(stack, `${stack}.gone`);
    const worker = procs.cli(['worker', '--nats', bed.nats.url, '--run-id', runId], tmp);
    const ended = await coordinator.exit(30_000);
    expect(ended.code).toBe(1);
    const errors = coordinator.stderr.split('\n').filter((l) => l.startsWith('tomorecon: error:'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/worker \S+ \(.*\) failed on chunk 0 \(tomogram TS_01, particles 1–\d+\): cannot read MRC file .*TS_01\.mrcs: no such file or directory/);
    expect(coordinator.stderr).not.toMatch(/internal error/);
    expect(coordinator.count('chunk assigned')).toBe(1);
    expect((await worker.exit(20_000)).code).not.toBe(0);
    expect(fs.existsSync(path.join(out, 'merged.mrc'))).toBe(false);
  });
});

describe('NATS authentication', () => {
  let secured: NatsServer;
  beforeAll(async () => {
    secured = await startNats({ user: 'tomo', pass: 's3cret' });
  });
  afterAll(async () => {
    await secured?.stop();
  });

  it('refuses a worker with a wrong password, with a clear message', async () => {
    const w = procs.cli(['worker', '--nats', secured.url, '--run-id', 'auth', '--nats-user', 'tomo', '--nats-pass', 'wrong'], tmp);
    const { code } = await w.exit(20_000);
    expect(code).not.toBe(0);
    expect(w.stderr).toMatch(/^tomorecon: error: cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+: .*authorization violation/im);
    expect(w.stderr).not.toMatch(/internal error/);
  });

  it('lets the right credentials in', async () => {
    const w = procs.cli(['worker', '--nats', secured.url, '--run-id', 'auth', '--nats-user', 'tomo', '--nats-pass', 's3cret', '--coordinator-timeout', '1'], tmp);
    const { code } = await w.exit(20_000);
    // Connected, found no coordinator, gave up after --coordinator-timeout: not an auth error.
    expect(code).not.toBe(0);
    expect(w.stderr).toContain('no coordinator of run auth answered');
    expect(w.stderr).not.toMatch(/authorization/i);
  });
});

describe('NATS authentication by NKey (--nats-nkey-seed)', () => {
  // A user NKey the server knows, and one it does not; their seeds in files, as a site keeps them.
  const known = nkeys.createUser();
  const stranger = nkeys.createUser();
  let server: NatsServer;
  let knownSeed = '';
  let strangerSeed = '';
  beforeAll(async () => {
    server = await startNats({ nkeys: [known.getPublicKey()] });
    knownSeed = path.join(tmp, 'known.nk');
    strangerSeed = path.join(tmp, 'stranger.nk');
    fs.writeFileSync(knownSeed, new TextDecoder().decode(known.getSeed()) + '\n', { mode: 0o600 });
    fs.writeFileSync(strangerSeed, new TextDecoder().decode(stranger.getSeed()) + '\n', { mode: 0o600 });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('lets a worker with a known key in', async () => {
    const w = procs.cli(['worker', '--nats', server.url, '--run-id', 'nk', '--nats-nkey-seed', knownSeed, '--coordinator-timeout', '1'], tmp);
    const { code } = await w.exit(20_000);
    // Connected (the key signed the server's nonce), found no coordinator: not an auth error.
    expect(code).not.toBe(0);
    expect(w.stderr).toContain('no coordinator of run nk answered');
    expect(w.stderr).not.toMatch(/authorization/i);
  });

  it('refuses an unknown key, with a clear message naming the flags', async () => {
    const w = procs.cli(['worker', '--nats', server.url, '--run-id', 'nk', '--nats-nkey-seed', strangerSeed], tmp);
    const { code } = await w.exit(20_000);
    expect(code).not.toBe(0);
    expect(w.stderr).toMatch(/^tomorecon: error: cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+: .*authorization violation.*--nats-nkey-seed/im);
    expect(w.stderr).not.toMatch(/internal error/);
  });

  it('refuses a connection without credentials', async () => {
    const w = procs.cli(['worker', '--nats', server.url, '--run-id', 'nk'], tmp);
    expect((await w.exit(20_000)).code).not.toBe(0);
    expect(w.stderr).toMatch(/authorization violation/i);
  });
});

describe('NATS authentication by JWT (--nats-creds)', () => {
  // An operator that the server trusts, its account, and users' .creds files; a user of another
  // operator's account, which the server does not know.
  let server: NatsServer;
  let good = '';
  let foreign = '';
  beforeAll(async () => {
    const authority = jwtAuthority();
    server = await startNats({ conf: authority.serverConf });
    good = path.join(tmp, 'good.creds');
    foreign = path.join(tmp, 'foreign.creds');
    fs.writeFileSync(good, authority.userCreds('worker'), { mode: 0o600 });
    fs.writeFileSync(foreign, jwtAuthority().userCreds('stranger'), { mode: 0o600 });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('lets a user of the trusted account in', async () => {
    const w = procs.cli(['worker', '--nats', server.url, '--run-id', 'jwt', '--nats-creds', good, '--coordinator-timeout', '1'], tmp);
    expect((await w.exit(20_000)).code).not.toBe(0);
    expect(w.stderr).toContain('no coordinator of run jwt answered');
    expect(w.stderr).not.toMatch(/authorization/i);
  });

  it('refuses a user of an account it does not know, naming the credential flags', async () => {
    const w = procs.cli(['worker', '--nats', server.url, '--run-id', 'jwt', '--nats-creds', foreign], tmp);
    expect((await w.exit(20_000)).code).not.toBe(0);
    expect(w.stderr).toMatch(/^tomorecon: error: cannot connect to NATS at .*: .*authorization violation.*--nats-creds/im);
  });
});

const OPENSSL = opensslAvailable();
describe.skipIf(!OPENSSL)(`NATS over TLS (--nats-tls-ca, --nats-tls-cert, --nats-tls-key)${OPENSSL ? '' : ' (skipped: openssl missing; apt-get install openssl)'}`, () => {
  // A server that requires TLS and verifies client certificates (tlsverify); certificates made
  // for the test with openssl.
  let server: NatsServer;
  let certs: TestCerts;
  beforeAll(async () => {
    certs = makeTestCerts(path.join(tmp, 'certs'));
    server = await startNats({ tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca, verify: true } });
  });
  afterAll(async () => {
    await server?.stop();
  });
  const worker = (...flags: string[]): ReturnType<typeof procs.cli> =>
    procs.cli(['worker', '--nats', server.url, '--run-id', 'tls', '--coordinator-timeout', '1', ...flags], tmp);

  it('connects with the CA and a client certificate', async () => {
    const w = worker('--nats-tls-ca', certs.ca, '--nats-tls-cert', certs.clientCert, '--nats-tls-key', certs.clientKey);
    expect((await w.exit(20_000)).code).not.toBe(0);
    // Connected, found no coordinator: not a TLS error.
    expect(w.stderr).toContain('no coordinator of run tls answered');
  });

  it('refuses a server certificate from another CA, and says what to check', async () => {
    const w = worker('--nats-tls-ca', certs.otherCa, '--nats-tls-cert', certs.clientCert, '--nats-tls-key', certs.clientKey);
    expect((await w.exit(20_000)).code).not.toBe(0);
    expect(w.stderr).toMatch(/^tomorecon: error: cannot connect to NATS at .*: .*certificate.* \(TLS: check that --nats-tls-ca is the CA that signed the server's certificate/im);
  });

  it('says the server wants TLS when no TLS flag is given', async () => {
    const w = worker();
    expect((await w.exit(20_000)).code).not.toBe(0);
    expect(w.stderr).toMatch(/\(TLS: the server wants TLS: give the CA that signed its certificate with --nats-tls-ca\)/);
  });

  it('without a client certificate, points at --nats-tls-cert when the server does not answer', async () => {
    const w = worker('--nats-tls-ca', certs.ca);
    expect((await w.exit(30_000)).code).not.toBe(0);
    expect(w.stderr).toMatch(/cannot connect to NATS at .*--nats-tls-cert and --nats-tls-key/);
    expect(w.stderr).not.toMatch(/internal error|\n\s+at /);
  }, 40_000);
});
