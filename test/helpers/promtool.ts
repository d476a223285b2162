import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

export const PROMTOOL = fs.existsSync('/usr/bin/promtool') ? '/usr/bin/promtool' : null;

/** '' when `promtool check metrics` accepts the exposition text, else what it says. */
export function promtoolProblems(text: string): string {
  const r = spawnSync(PROMTOOL!, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() === '' && r.stderr.trim() === '' ? '' : `${r.stdout}${r.stderr}`.trim() || `exit ${r.status}`;
}
