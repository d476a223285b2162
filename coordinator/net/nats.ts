/**
 * NATS connections of the coordinator and the workers: authentication and TLS options passed
 * through, unlimited reconnect attempts with short waits, and connection-state callbacks (the
 * coordinator pauses loss detection while it is disconnected).
 */
import fs from 'node:fs';
import { ConnectionOptions, NatsConnection, connect, credsAuthenticator, nkeyAuthenticator } from 'nats';
import { TomoError } from '../../src/errors.js';
import type { NatsAuthOptions } from '../../src/distributed/flags.js';
import type { Logger } from '../../src/distributed/log.js';

export interface NatsEvents {
  onDisconnect?: () => void;
  onReconnect?: () => void;
}

function readFile(file: string, flag: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new TomoError(`${flag} ${file}: cannot read the file (${(e as Error).message})`);
  }
}

export function natsConnectionOptions(url: string, auth: NatsAuthOptions, name: string): ConnectionOptions {
  const o: ConnectionOptions = {
    servers: url,
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    reconnectJitter: 100,
    reconnectJitterTLS: 250,
    pingInterval: 5000,
    maxPingOut: 2,
    timeout: 5000,
  };
  if (auth.user) {
    o.user = auth.user;
    o.pass = auth.pass;
  }
  if (auth.token) o.token = auth.token;
  if (auth.nkeySeedFile) o.authenticator = nkeyAuthenticator(new Uint8Array(Buffer.from(readFile(auth.nkeySeedFile, '--nats-nkey-seed').toString('utf8').trim())));
  if (auth.credsFile) o.authenticator = credsAuthenticator(new Uint8Array(readFile(auth.credsFile, '--nats-creds')));
  if (auth.tlsCa || auth.tlsCert) {
    o.tls = {};
    for (const [flag, file] of [['--nats-tls-ca', auth.tlsCa], ['--nats-tls-cert', auth.tlsCert], ['--nats-tls-key', auth.tlsKey]]) {
      if (file && !fs.existsSync(file)) throw new TomoError(`${flag} ${file}: no such file`);
    }
    if (auth.tlsCa) o.tls.caFile = auth.tlsCa;
    if (auth.tlsCert) o.tls.certFile = auth.tlsCert;
    if (auth.tlsKey) o.tls.keyFile = auth.tlsKey;
  }
  return o;
}

export async function connectNats(url: string, auth: NatsAuthOptions, name: string, log: Logger, events: NatsEvents = {}): Promise<NatsConnection> {
  let nc: NatsConnection;
  try {
    nc = await connect(natsConnectionOptions(url, auth, name));
  } catch (e) {
    if (e instanceof TomoError) throw e;
    const err = e as Error & { code?: string };
    const authFailed = /authoriz|authentic/i.test(`${err.code ?? ''} ${err.message}`);
    throw new TomoError(
      `cannot connect to NATS at ${url}: ${err.message}` +
        (authFailed ? ' (the server refused the credentials: check --nats-user/--nats-pass, --nats-token, --nats-nkey-seed or --nats-creds)' : ''),
    );
  }
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') {
        log.warn('disconnected from NATS; reconnecting', { server: String(s.data) });
        events.onDisconnect?.();
      } else if (s.type === 'reconnect') {
        log.info('reconnected to NATS', { server: String(s.data) });
        events.onReconnect?.();
      } else if (s.type === 'error') {
        log.warn('NATS error', { error: String(s.data) });
      }
    }
  })().catch(() => {});
  return nc;
}
