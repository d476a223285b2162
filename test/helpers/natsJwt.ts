/**
 * Decentralised (JWT) NATS authentication for tests of `--nats-creds`: an operator, an account it
 * signs and users the account signs, as NATS JWTs (header `{"typ":"JWT","alg":"ed25519-nkey"}`,
 * claims with `iss`/`sub` public NKeys and a `nats` section, base64url, Ed25519 signature of the
 * issuer's NKey); the server's configuration (the operator, a memory resolver with the account
 * preloaded) and users' `.creds` files (user JWT and seed).
 */
import crypto from 'node:crypto';
import { nkeys } from 'nats';

type KeyPair = ReturnType<typeof nkeys.createUser>;

const b64u = (b: Uint8Array | string): string => Buffer.from(b).toString('base64url');

function base32(bytes: Uint8Array): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

/** A JWT about `subject`, signed by `issuer`; its id is the claims' SHA-512/256 (base32). */
function natsJwt(issuer: KeyPair, subject: string, name: string, nats: Record<string, unknown>): string {
  const claims: Record<string, unknown> = { jti: '', iat: Math.floor(Date.now() / 1000), iss: issuer.getPublicKey(), name, sub: subject, nats };
  claims.jti = base32(crypto.createHash('sha512-256').update(JSON.stringify(claims)).digest());
  const signed = `${b64u(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' }))}.${b64u(JSON.stringify(claims))}`;
  return `${signed}.${b64u(issuer.sign(new TextEncoder().encode(signed)))}`;
}

const UNLIMITED_ACCOUNT = { limits: { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 }, default_permissions: { pub: {}, sub: {} }, type: 'account', version: 2 };
const UNLIMITED_USER = { pub: {}, sub: {}, subs: -1, data: -1, payload: -1, type: 'user', version: 2 };

export interface JwtAuthority {
  /** nats-server configuration: trust the operator, know the account. */
  serverConf: string;
  /** A `.creds` file's text for a new user of the account. */
  userCreds(name: string): string;
}

export function jwtAuthority(): JwtAuthority {
  const operator = nkeys.createOperator();
  const account = nkeys.createAccount();
  const operatorJwt = natsJwt(operator, operator.getPublicKey(), 'tomorecon test operator', { type: 'operator', version: 2 });
  const accountJwt = natsJwt(operator, account.getPublicKey(), 'tomorecon test account', UNLIMITED_ACCOUNT);
  return {
    serverConf: `operator: "${operatorJwt}"\nresolver: MEMORY\nresolver_preload: {\n  ${account.getPublicKey()}: "${accountJwt}"\n}\n`,
    userCreds(name: string): string {
      const user = nkeys.createUser();
      const userJwt = natsJwt(account, user.getPublicKey(), name, UNLIMITED_USER);
      const seed = new TextDecoder().decode(user.getSeed());
      return `-----BEGIN NATS USER JWT-----\n${userJwt}\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n`;
    },
  };
}
