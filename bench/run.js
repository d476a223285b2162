#!/usr/bin/env node
/**
 * `npm run bench`: end-to-end and per-stage timings on the reference dataset shape of the
 * performance issue (2 tomograms × 50 particles, 41 tilts ±60° in 3° steps, 640×640 px at
 * 2 Å/px, with motion), generated once with `tomorecon simulate` (fixed seed) into .bench-cache/.
 *
 *   npm run bench                 both boxes, 5 runs each
 *   npm run bench -- --runs 3 --boxes 64
 *
 * Also: the same box-128 run through a coordinator and 2 workers on loopback (wall time and its
 * commit round as each process logged it), the partial-volume transfer with the real protocol
 * (bench/transfer.js) and raw, and per-stage micro-benchmarks. Prints a table and writes
 * .bench-cache/results-<time>.json for comparisons between runs.
 */
import { spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CACHE = path.join(ROOT, '.bench-cache');
const CLI = path.join(ROOT, 'bin/tomorecon.js');
const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const RUNS = Number(flag('runs', '5'));
const BOXES = flag('boxes', '64,128').split(',').map(Number);
const THREADS = ['--j', '2', '--j_out', '2', '--j_in', '1'];

// RELION 5.0.1 on this machine type (the issue's reference figures).
const RELION = { 64: { wall: 1.05, rssMB: 243 }, 128: { wall: 3.41, rssMB: 396 } };

if (!fs.existsSync(path.join(ROOT, 'dist/src/cli/main.js'))) {
  execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'inherit' });
}
const dist = (p) => import(path.join(ROOT, 'dist/src', p));

const PARAMS = {
  seed: 2024, tomos: 2, particles: 50, tiltRange: 60, tiltStep: 3, image: [640, 640], tomoSize: [640, 640, 200],
  pixel: 2, box: 64, motion: true,
};
const dataset = path.join(CACHE, 'ds-2x50-41tilts-640');
const stamp = path.join(dataset, 'bench-params.json');
if (!fs.existsSync(stamp) || fs.readFileSync(stamp, 'utf8') !== JSON.stringify(PARAMS)) {
  fs.rmSync(dataset, { recursive: true, force: true });
  const { simulateDataset } = await dist('simulate/dataset.js');
  const { SIM_DEFAULTS } = await dist('simulate/params.js');
  process.stderr.write(`simulating the benchmark dataset into ${dataset} …\n`);
  simulateDataset({ ...SIM_DEFAULTS, ...PARAMS }, dataset);
  fs.writeFileSync(stamp, JSON.stringify(PARAMS));
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = { date: new Date().toISOString(), host: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version }, runs: RUNS, endToEnd: [], stages: {} };

// ---------------------------------------------------------------- end to end
const out = fs.mkdtempSync(path.join(os.tmpdir(), 'tomorecon-bench-'));
const particleTilts = PARAMS.tomos * PARAMS.particles * (2 * (PARAMS.tiltRange / PARAMS.tiltStep) + 1);
for (const b of BOXES) {
  const walls = [];
  const rss = [];
  const cpu = [];
  let phases = '';
  for (let r = 0; r < RUNS; r++) {
    const t0 = process.hrtime.bigint();
    const res = spawnSync(process.execPath, [CLI, 'reconstruct', '--i', 'optimisation_set.star', '--b', String(b), ...THREADS, '--o', path.join(out, `b${b}`)], {
      cwd: dataset,
      encoding: 'utf8',
    });
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    if (res.status !== 0) throw new Error(`reconstruct --b ${b} failed:\n${res.stderr}`);
    walls.push(wall);
    // The run's report lines are on stdout (as RELION's).
    const m = /peak memory \(RSS\) (\d+) MiB/.exec(res.stdout);
    rss.push(m ? Number(m[1]) * 1.048576 : NaN);
    phases = /time per phase: ([^;]*)/.exec(res.stdout)?.[1] ?? '';
    const c = /; CPU ([0-9.]+) s/.exec(res.stdout);
    cpu.push(c ? Number(c[1]) : NaN);
  }
  const row = {
    box: b,
    wallMedianS: median(walls),
    wallAllS: walls,
    peakRssMB: Math.max(...rss),
    peakRssAllMB: rss,
    particleTiltsPerS: particleTilts / median(walls),
    cpuMedianS: median(cpu),
    relion: RELION[b] ?? null,
    lastPhases: phases,
  };
  results.endToEnd.push(row);
}
// ---------------------------------------------------------------- distributed (box 128)
// A coordinator and 2 single-thread workers on loopback against the local 2-thread run.
const natsBin = fs.existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : 'nats-server';
const haveNats = spawnSync(natsBin, ['--version']).status === 0;
if (haveNats && BOXES.includes(128)) {
  const { spawn } = await import('node:child_process');
  const net = await import('node:net');
  const port = await new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const p = srv.address().port;
      srv.close(() => resolve(p));
    });
  });
  const nats = spawn(natsBin, ['-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500));
  // cold: coordinator and workers launched together (process start-up of all three counted);
  // waiting: the workers were started before and wait for a coordinator (as a SLURM worker job
  // that is up before the coordinator's: their start-up over, compute threads warmed up), timed
  // from the coordinator's launch.
  const distRun = async (runId, outDir, workersFirst) => {
    const startWorkers = () =>
      [0, 1].map(() => spawn(process.execPath, [CLI, 'worker', '--nats', `nats://127.0.0.1:${port}`, '--run-id', runId, '--threads', '1'], { stdio: ['ignore', 'ignore', 'pipe'] }));
    let workers = [];
    if (workersFirst) {
      workers = startWorkers();
      await Promise.all(
        workers.map(
          (w) =>
            new Promise((resolve) => {
              let buf = '';
              w.stderr.on('data', (d) => {
                buf += d;
                if (buf.includes('compute threads ready')) resolve();
              });
            }),
        ),
      );
    }
    const t0 = process.hrtime.bigint();
    const coord = spawn(process.execPath, [CLI, 'coordinator', '--nats', `nats://127.0.0.1:${port}`, '--run-id', runId, '--i', 'optimisation_set.star', '--b', '128', '--j', '2', '--o', outDir], { cwd: dataset, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    coord.stderr.on('data', (d) => (err += d));
    if (!workersFirst) workers = startWorkers();
    const workerErr = workers.map(() => '');
    workers.forEach((w, i) => w.stderr.on('data', (d) => (workerErr[i] += d)));
    const code = await new Promise((resolve) => coord.on('exit', resolve));
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    await Promise.all(workers.map((w) => new Promise((resolve) => (w.exitCode !== null ? resolve() : w.on('exit', resolve)))));
    if (code !== 0) throw new Error(`distributed bench run failed:\n${err}`);
    return { wall, err, workerErr };
  };
  const walls = [];
  const wallsWaiting = [];
  const rounds = { inner: [], leaf: [], coordinator: [] };
  // The commit round as each process logged it: the workers' part (inner: with children; none
  // with two workers, which both send to the coordinator) and the coordinator's round.
  const fields = (text, msg) => text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).filter((l) => l.msg === msg).map((l) => l.fields);
  // CPU (user + system) of the three processes, as each logged at its end.
  const cpuOf = (f) => (f ? f.cpuUserS + f.cpuSystemS : NaN);
  const cpus = { coordinator: [], workers: [], total: [] };
  const collectCpu = (r) => {
    const c = cpuOf(fields(r.err, 'done')[0]);
    const w = r.workerErr.map((t) => cpuOf(fields(t, 'run finished; exiting')[0]));
    cpus.coordinator.push(c);
    cpus.workers.push(...w);
    cpus.total.push(c + w.reduce((a, b) => a + b, 0));
  };
  const collectRounds = (r) => {
    for (const f of r.workerErr.flatMap((t) => fields(t, 'round sums sent'))) (f.children > 0 ? rounds.inner : rounds.leaf).push(f.seconds);
    for (const f of fields(r.err, 'round committed')) rounds.coordinator.push(f.seconds);
  };
  try {
    for (let r = 0; r < RUNS; r++) {
      const cold = await distRun(`bench-cold${r}`, path.join(out, `dist${r}`), false);
      walls.push(cold.wall);
      collectRounds(cold);
      collectCpu(cold);
      const waiting = await distRun(`bench-waiting${r}`, path.join(out, `distw${r}`), true);
      wallsWaiting.push(waiting.wall);
      collectRounds(waiting);
    }
  } finally {
    nats.kill();
  }
  const local = results.endToEnd.find((e) => e.box === 128);
  results.distributed = {
    box: 128,
    workers: 2,
    threadsPerWorker: 1,
    wallMedianS: median(walls),
    wallAllS: walls,
    ratio: median(walls) / local.wallMedianS,
    workersWaitingWallMedianS: median(wallsWaiting),
    workersWaitingWallAllS: wallsWaiting,
    workersWaitingRatio: median(wallsWaiting) / local.wallMedianS,
    localWallMedianS: local.wallMedianS,
    roundS: rounds,
    roundMedianS: Object.fromEntries(Object.entries(rounds).map(([k, v]) => [k, v.length ? median(v) : null])),
    // Launched together; the local run's is endToEnd[box 128].cpuMedianS.
    cpuS: cpus,
    cpuMedianS: Object.fromEntries(Object.entries(cpus).map(([k, v]) => [k, median(v)])),
    localCpuMedianS: local.cpuMedianS,
  };
}
fs.rmSync(out, { recursive: true, force: true });

// ---------------------------------------------------------------- partial-volume transfer
// One box-128 volume set (both halves: 2·3·65·128² doubles = 48 MiB) sent over ZeroMQ on
// loopback in 1 MiB segments framed as the data plane frames them ([msgpack header with CRC-32,
// float64 bytes]); the receiver checks every CRC and adds the segment into its own sums. Sender
// and receiver run in two threads of this process.
{
  const { Worker } = await import('node:worker_threads');
  const port = 20000 + Math.floor(Math.random() * 20000);
  const receiver = new Worker(
    `
    const { parentPort, workerData } = require('node:worker_threads');
    (async () => {
      const zmq = require(workerData.zmq);
      const { decode } = await import(workerData.messages);
      const { crc32 } = await import(workerData.checksum);
      const sock = new zmq.Pull();
      await sock.bind('tcp://127.0.0.1:' + workerData.port);
      parentPort.postMessage('ready');
      const sum = new Float64Array(workerData.segment / 8);
      let bytes = 0;
      let bad = 0;
      for (let k = 0; k < workerData.count; k++) {
        const [h, payload] = await sock.receive();
        const head = decode(h);
        if (crc32(payload) !== head.crc) bad++;
        const v = new Float64Array(payload.buffer, payload.byteOffset, payload.byteLength / 8);
        for (let i = 0; i < v.length; i++) sum[i] += v[i];
        bytes += payload.byteLength;
      }
      sock.close();
      parentPort.postMessage({ bytes, bad });
    })();
    `,
    {
      eval: true,
      workerData: {
        port,
        zmq: path.join(ROOT, 'node_modules/zeromq'),
        messages: path.join(ROOT, 'dist/src/distributed/messages.js'),
        checksum: path.join(ROOT, 'dist/src/distributed/checksum.js'),
        segment: 1 << 20,
        count: 48 * 4,
      },
    },
  );
  await new Promise((r) => receiver.once('message', r));
  const zmq = (await import('zeromq')).default ?? (await import('zeromq'));
  const { encode } = await dist('distributed/messages.js');
  const { crc32 } = await dist('distributed/checksum.js');
  const push = new zmq.Push();
  push.connect(`tcp://127.0.0.1:${port}`);
  const volume = Float64Array.from({ length: (48 << 20) / 8 }, (_, i) => i * 1e-6);
  const seg = (1 << 20) / 8;
  const t0 = process.hrtime.bigint();
  const done = new Promise((r) => receiver.once('message', r));
  for (let rep = 0; rep < 4; rep++) {
    for (let k = 0; k < volume.length / seg; k++) {
      const bytes = new Uint8Array(volume.buffer, k * seg * 8, seg * 8);
      await push.send([encode({ t: 'seg', k, crc: crc32(bytes) }), bytes]);
    }
  }
  const r = await done;
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  push.close();
  await receiver.terminate();
  results.transfer = { bytes: r.bytes, seconds: secs, gbPerS: r.bytes / secs / 1e9, crcFailures: r.bad };
}

// ---------------------------------------------------------------- the real protocol
// The commit round's transfer as the distributed runner does it (bench/transfer.js): DataPlane,
// sendSubtree and receiveSubtree, one process per node on loopback, CRC-32 per segment,
// acknowledgements and window, chunk lists, the coordinator adding the round to its sums. The
// distributed bench run's shape (2 workers, each → coordinator) and one link alone.
{
  const { benchTransfer, report } = await import('./transfer.js');
  results.protocol = [];
  for (const workers of [2, 1]) results.protocol.push(await benchTransfer({ workers, rounds: Math.max(5, 2 * RUNS - 1) }));
  results.protocolReport = results.protocol.map(report);
}

// ---------------------------------------------------------------- stages (single thread, box 128)
const { ExtractionWorkspace, extractFrameSpectrum } = await dist('recon/extract.js');
const { ctfConstants, drawCtf } = await dist('physics/ctf.js');
const { doseExponents, drawDoseWeightsFrom, doseXRanges } = await dist('physics/dose.js');
const { backprojectSlice, createAccumulator } = await dist('recon/backproject.js');
const { griddingCorrect, divideByWeight, weightToCentredFull } = await dist('recon/finalise.js');
const { eulerToMatrix } = await dist('geometry/matrix.js');
const s = 128;
const sh = s / 2 + 1;
const time = (n, fn) => {
  // Warm-up: as many calls as timed ones (up to 100), so that the timed ones run optimised code
  // (one call left the JIT tiering up inside the timed loop).
  for (let i = 0; i < Math.min(n, 100); i++) fn(i);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  return Number(process.hrtime.bigint() - t0) / 1e6 / n;
};
let seed = 7;
const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const W = 640;
const stack = Float32Array.from({ length: W * W }, () => rnd() - 0.5);
const ws = new ExtractionWorkspace(s, s);
const slice = new Float32Array(2 * sh * s);
results.stages.extractionAndFftMs = time(200, (i) => extractFrameSpectrum(ws, stack, 0, W, W, 200.3 + (i % 7), 310.7, 1, true, slice));
{
  // As the compute threads extract: square and spectrum in their arena, the FFT in WebAssembly.
  const { WasmArena } = await dist('recon/wasmArena.js');
  const { extractionArenaBytes } = await dist('recon/extract.js');
  const arena = WasmArena.create(extractionArenaBytes(s) + 4096);
  const wsW = arena && new ExtractionWorkspace(s, s, arena);
  if (wsW?.fft) results.stages.extractionWasmFftMs = time(200, (i) => extractFrameSpectrum(wsW, stack, 0, W, W, 200.3 + (i % 7), 310.7, 1, true, slice));
}
const ctf = new Float32Array(sh * s);
const dose = new Float32Array(sh * s);
const ranges = new Int32Array(s);
let doseTable = null;
const k = ctfConstants({ defocusU: 20000, defocusV: 19500, defocusAngle: 30, voltage: 300, cs: 2.7, q0: 0.1, bfactor: 0, scale: 1, phaseShift: 0 });
// Dose weights and ranges are drawn once per tilt of a tomogram (from a table of exponents made
// once per tomogram: its cost shared by the 41 tilts here); the CTF once per particle and tilt.
results.stages.doseTablesPerTiltMs = time(200, (i) => {
  const q = i % 41 === 0 || !doseTable ? (doseTable = doseExponents(s, 2, 0)) : doseTable;
  drawDoseWeightsFrom(q, 30, dose);
  doseXRanges(s, dose, 0.01, ranges);
});
results.stages.ctfPerParticleTiltMs = time(200, () => drawCtf(k, s, 2, ctf, null, ranges));
{
  // The CTF·dose premultiplication as the compute threads do it with their arena (recon/
  // particleKernel.ts, ctfDoseInArena): the tilt's dose weights and row limits copied in, then
  // CTF, dose and slice in WebAssembly. (The JavaScript path: drawCtf above, then a loop.)
  const { WasmArena } = await dist('recon/wasmArena.js');
  const arena = WasmArena.create(24 * sh * s + 4096);
  if (arena) {
    const P = arena.f32(2 * sh * s).fill(0.5);
    const Wt = arena.f32(sh * s);
    const doseW = arena.f32(sh * s);
    const rangesW = arena.i32(s);
    const inv = 1 / (s * 2);
    results.stages.ctfDoseWasmPerParticleTiltMs = time(200, () => {
      doseW.set(dose);
      rangesW.set(ranges);
      arena.ctfDose(P, Wt, doseW, rangesW, null, s, inv, k);
    });
  }
}
const acc = createAccumulator(s);
const Wt = Float32Array.from({ length: sh * s }, () => rnd());
results.stages.backprojectSliceMs = time(200, (i) => backprojectSlice(acc, s, slice, Wt, eulerToMatrix(17 * i, 40 + (i % 50), 33 * i), 64));
// The same insertion with the WebAssembly kernel the compute threads use (recon/wasmArena.ts).
const { WasmArena } = await dist('recon/wasmArena.js');
const arena = WasmArena.create(2 * acc.data.byteLength + 2 * slice.byteLength + 2 * Wt.byteLength);
if (arena) {
  const accW = { data: arena.f64(acc.data.length), weight: arena.f64(acc.weight.length) };
  const sliceW = arena.f32(slice.length);
  const WtW = arena.f32(Wt.length);
  sliceW.set(slice);
  WtW.set(Wt);
  results.stages.backprojectSliceWasmMs = time(200, (i) => arena.insert(accW, s, sliceW, WtW, eulerToMatrix(17 * i, 40 + (i % 50), 33 * i), 64));
}
results.stages.finaliseOneTagMs = time(3, () => {
  const data = acc.data.slice();
  const V = griddingCorrect(data, s, true);
  divideByWeight(V, acc.weight, s, -1, data, V);
  weightToCentredFull(acc.weight, s);
});

// ---------------------------------------------------------------- report
fs.mkdirSync(CACHE, { recursive: true });
const file = path.join(CACHE, `results-${results.date.replace(/[:.]/g, '-')}.json`);
fs.writeFileSync(file, JSON.stringify(results, null, 1));
console.log(`tomorecon bench — ${results.host.model}, ${results.host.cpus} cores, Node ${results.host.node}; ${RUNS} runs each`);
console.log(`dataset: 2 tomograms × 50 particles, 41 tilts, 640×640 px, motion; --j 2 --j_out 2 --j_in 1\n`);
console.log('box  wall (median)  RELION 5   peak RSS  RELION 5   particle-tilts/s');
for (const r of results.endToEnd) {
  console.log(
    `${String(r.box).padEnd(4)} ${r.wallMedianS.toFixed(2).padStart(8)} s   ${r.relion ? r.relion.wall.toFixed(2).padStart(5) + ' s' : '    —  '}  ${r.peakRssMB.toFixed(0).padStart(6)} MB  ${r.relion ? String(r.relion.rssMB).padStart(5) + ' MB' : '   —    '}  ${r.particleTiltsPerS.toFixed(0).padStart(8)}`,
  );
  console.log(`     phases: ${r.lastPhases}`);
}
if (results.distributed) {
  const d = results.distributed;
  console.log(`\ndistributed, coordinator + 2 single-thread workers on loopback, box 128 (local 2 threads ${d.localWallMedianS.toFixed(2)} s):`);
  console.log(`  all three launched together:         ${d.wallMedianS.toFixed(2)} s (ratio ${d.ratio.toFixed(2)})`);
  console.log(`  workers up before, from coordinator: ${d.workersWaitingWallMedianS.toFixed(2)} s (ratio ${d.workersWaitingRatio.toFixed(2)})`);
  const ms = (k) => d.roundS[k].map((x) => (x * 1000).toFixed(0)).join(', ');
  const cm = d.cpuMedianS;
  console.log(
    `  CPU (user + system, medians, launched together): ${cm.total.toFixed(2)} s = coordinator ${cm.coordinator.toFixed(2)} s + workers ${cm.workers.toFixed(2)} s each; the local run ${d.localCpuMedianS.toFixed(2)} s (on 2 cores the wall cannot be below CPU / 2: ${(cm.total / 2).toFixed(2)} s against ${(d.localCpuMedianS / 2).toFixed(2)} s)`,
  );
  console.log(`  its commit round (box-128 volume set, its insertion sphere moved), median: ${d.roundMedianS.inner ? `inner ${(d.roundMedianS.inner * 1000).toFixed(0)} ms [${ms('inner')}], ` : ''}leaf ${(d.roundMedianS.leaf * 1000).toFixed(0)} ms [${ms('leaf')}], coordinator ${(d.roundMedianS.coordinator * 1000).toFixed(0)} ms [${ms('coordinator')}]`);
}
if (results.transfer) {
  const t = results.transfer;
  console.log(`raw ZeroMQ push/pull of partial volumes on loopback (1 MiB segments, CRC-32 checked, summed; no acknowledgements): ${(t.bytes / 2 ** 20).toFixed(0)} MiB in ${t.seconds.toFixed(2)} s = ${t.gbPerS.toFixed(2)} GB/s`);
}
if (results.protocolReport) {
  console.log('partial-volume transfer, the commit round\'s real protocol (bench/transfer.js):');
  for (const r of results.protocolReport) console.log(r.replace(/^/gm, '  '));
}
console.log('\nstages (one thread, box 128):');
for (const [name, ms] of Object.entries(results.stages)) console.log(`  ${name.padEnd(30)} ${ms.toFixed(3)} ms`);
console.log(`\nresults: ${path.relative(ROOT, file)}`);
