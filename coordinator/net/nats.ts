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

/** What to check, for the connection errors whose cause the server's or TLS's message leaves unsaid. */
export function connectHint(err: Error & { code?: string }, auth: NatsAuthOptions): string {
  const what = `${err.code ?? ''} ${err.message}`;
  if (/authoriz|authentic/i.test(what)) return ' (the server refused the credentials: check --nats-user/--nats-pass, --nats-token, --nats-nkey-seed or --nats-creds)';
  if (/certificate|self[- ]signed|altname|ssl|tls/i.test(what)) {
    return ` (TLS: ${auth.tlsCa ? 'check that --nats-tls-ca is the CA that signed the server\'s certificate, and that the certificate names the host in --nats' : 'the server wants TLS: give the CA that signed its certificate with --nats-tls-ca'})`;
  }
  if (/timeout/i.test(what) && auth.tlsCa && !auth.tlsCert) {
    return ' (no answer: if the server verifies clients (tlsverify), give a client certificate with --nats-tls-cert and --nats-tls-key)';
  }
  return '';
}

export async function connectNats(url: string, auth: NatsAuthOptions, name: string, log: Logger, events: NatsEvents = {}): Promise<NatsConnection> {
  let nc: NatsConnection;
  try {
    nc = await connect(natsConnectionOptions(url, auth, name));
  } catch (e) {
    if (e instanceof TomoError) throw e;
    throw new TomoError(`cannot connect to NATS at ${url}: ${(e as Error).message}${connectHint(e as Error & { code?: string }, auth)}`);
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
