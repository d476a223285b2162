/**
 * Test helpers for the distributed runner: a real nats-server on a free loopback port (or on an
 * address of the test's own network namespace set-up; stopped and restarted on the same port on
 * request), and a registry of spawned processes that are all killed at the end of a test file,
 * also when a test fails.
 */
import { ChildProcess, spawn, SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { CLI } from './paths.js';

export const NATS_SERVER = fs.existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : 'nats-server';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('data', (d) => {
      s.destroy();
      resolve(d.toString().startsWith('INFO'));
    });
    s.once('error', () => resolve(false));
    s.setTimeout(1000, () => {
      s.destroy();
      resolve(false);
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class NatsServer {
  private child: ChildProcess | null = null;
  /** The folder of the configuration file, when the server has one (removed by stop). */
  private confDir: string | null = null;
  log = '';

  constructor(
    readonly port: number,
    private readonly auth?: NatsAuth,
    /** The only address the server listens on. */
    readonly host = '127.0.0.1',
  ) {}

  get url(): string {
    return `nats://${this.host}:${this.port}`;
  }

  async start(): Promise<void> {
    const args = ['-a', this.host, '-p', String(this.port)];
    if (this.auth && 'user' in this.auth) args.push('--user', this.auth.user, '--pass', this.auth.pass);
    // Users known by their NKey public keys, and operators, exist only in configuration files.
    const confText =
      this.auth && 'nkeys' in this.auth
        ? `authorization {\n  users = [\n${this.auth.nkeys.map((k) => `    { nkey: "${k}" }\n`).join('')}  ]\n}\n`
        : this.auth && 'conf' in this.auth
          ? this.auth.conf
          : null;
    if (confText !== null) {
      this.confDir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'tomorecon-nats-'));
      const conf = path.join(this.confDir, 'nats.conf');
      fs.writeFileSync(conf, confText);
      args.push('-c', conf);
    }
    if (this.auth && 'tls' in this.auth) {
      const t = this.auth.tls;
      args.push('--tls', '--tlscert', t.cert, '--tlskey', t.key, '--tlscacert', t.ca);
      if (t.verify) args.push('--tlsverify');
    }
    const child = spawn(NATS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout!.on('data', (d) => (this.log += d));
    child.stderr!.on('data', (d) => (this.log += d));
    const t0 = Date.now();
    while (!(await canConnect(this.port, this.host))) {
      if (child.exitCode !== null) throw new Error(`nats-server exited with code ${child.exitCode}: ${this.log}`);
      if (Date.now() - t0 > 10_000) throw new Error(`nats-server did not accept connections on ${this.port}: ${this.log}`);
      await sleep(50);
    }
  }

  async stop(): Promise<void> {
    if (this.confDir) fs.rmSync(this.confDir, { recursive: true, force: true });
    this.confDir = null;
    const c = this.child;
    this.child = null;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGKILL');
    await gone;
  }
}

/**
 * A user and password; or the NKey public keys of the users the server lets in; or TLS with the
 * server's certificate and key, and (verify) client certificates checked against `ca`; or a
 * configuration file's text (e.g. natsJwt.ts's operator and account).
 */
export type NatsAuth = { user: string; pass: string } | { nkeys: string[] } | { tls: { cert: string; key: string; ca: string; verify: boolean } } | { conf: string };

export async function startNats(auth?: NatsAuth, host?: string): Promise<NatsServer> {
  const s = new NatsServer(await freePort(), auth, host);
  await s.start();
  return s;
}

export interface LogLine {
  ts?: string;
  level?: string;
  component?: string;
  msg?: string;
  fields?: Record<string, unknown>;
}

/** A spawned `tomorecon` process with its stderr kept and parsed as JSON log lines. */
export class CliProcess {
  stderr = '';
  stdout = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly child: ChildProcess) {
    child.stdout?.on('data', (d) => (this.stdout += d));
    child.stderr?.on('data', (d) => (this.stderr += d));
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  lines(): LogLine[] {
    const out: LogLine[] = [];
    for (const l of this.stderr.split('\n')) {
      if (!l.startsWith('{')) continue;
      try {
        out.push(JSON.parse(l));
      } catch {
        /* partial line */
      }
    }
    return out;
  }

  count(msg: string): number {
    return this.lines().filter((l) => l.msg === msg).length;
  }

  async waitFor(pred: (p: this) => boolean, timeoutMs: number, what: string): Promise<void> {
    const t0 = Date.now();
    while (!pred(this)) {
      if (!this.running) throw new Error(`process exited while waiting for ${what}:\n${this.stderr.slice(-3000)}`);
      if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}:\n${this.stderr.slice(-3000)}`);
      await sleep(20);
    }
  }

  /** Waits for the exit; kills the process (and fails) after timeoutMs. */
  async exit(timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.child.kill('SIGKILL');
        reject(new Error(`process ${this.pid} did not exit within ${timeoutMs} ms:\n${this.stderr.slice(-3000)}`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Every process a test file starts; killAll() in afterEach/afterAll. */
export class Processes {
  private readonly all: CliProcess[] = [];

  /**
   * Starts `tomorecon args…`; with `wrap` (e.g. ['ip', 'netns', 'exec', name]) the command is run
   * through it (the wrapper must exec the command, so that the pid is that of tomorecon).
   */
  cli(args: string[], cwd: string, env: Record<string, string> = {}, wrap: string[] = []): CliProcess {
    const opts: SpawnOptions = { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] };
    const cmd = [...wrap, process.execPath, CLI, ...args];
    const p = new CliProcess(spawn(cmd[0], cmd.slice(1), opts));
    this.all.push(p);
    return p;
  }

  async killAll(): Promise<void> {
    await Promise.all(
      this.all.map(async (p) => {
        if (p.running) {
          p.child.kill('SIGKILL');
          await p.exited;
        }
      }),
    );
    this.all.length = 0;
  }
}

/**
 * A test file's distributed set-up: a temporary folder, a nats-server started before the tests,
 * every spawned process killed after each test, and the server stopped and the folder removed
 * after the file (also when a test fails).
 */
export function natsTestBed(name: string): { tmp: string; procs: Processes; readonly nats: NatsServer } {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `tomorecon-${name}-`));
  const procs = new Processes();
  let server: NatsServer | undefined;
  beforeAll(async () => {
    server = await startNats();
  });
  afterEach(async () => {
    await procs.killAll();
  });
  afterAll(async () => {
    await procs.killAll();
    await server?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  return {
    tmp,
    procs,
    get nats(): NatsServer {
      return server!;
    },
  };
}
