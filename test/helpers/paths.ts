import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync, SpawnSyncReturns } from 'node:child_process';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** ../shared beside the repository, as laid out for developers and CI. */
export const SHARED = path.resolve(REPO, '../shared');
export const CONFORMANCE = path.join(SHARED, 'conformance');
export const CLI = path.join(REPO, 'bin/tomorecon.js');

/** Runs the built CLI (dist/ is compiled by test/global-setup.ts). */
export function runCli(args: string[], cwd: string): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', timeout: 300_000 });
}
