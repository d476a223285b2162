/**
 * Variants of the V1 conformance dataset for tests: symlinks to its files, with one input
 * changed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { formatStar, readStar } from '../../src/formats/star.js';
import { CONFORMANCE } from './paths.js';

const V1 = path.join(CONFORMANCE, 'V1');

/** V1 in `dir` without rlnRandomSubset: all particles in one set, only merged maps. */
export function v1WithoutHalfSets(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const f of ['optimisation_set.star', 'motion.star', 'tomograms.star', 'tilt_series']) fs.symlinkSync(path.join(V1, f), path.join(dir, f));
  const blocks = readStar(path.join(V1, 'particles.star'));
  let dropped = 0;
  for (const b of blocks) {
    const k = b.labels.indexOf('rlnRandomSubset');
    if (k < 0) continue;
    b.labels.splice(k, 1);
    for (const r of b.rows) r.splice(k, 1);
    dropped++;
  }
  if (dropped === 0) throw new Error('V1 particles.star has no rlnRandomSubset');
  fs.writeFileSync(path.join(dir, 'particles.star'), formatStar(blocks));
}

/** V1 in `dir` with every tilt's defocus (rlnDefocusU and V) larger by `deltaA` Å. */
export function v1WithLargerDefocus(dir: string, deltaA: number): void {
  fs.mkdirSync(path.join(dir, 'tilt_series'), { recursive: true });
  for (const f of ['optimisation_set.star', 'particles.star', 'motion.star', 'tomograms.star']) fs.symlinkSync(path.join(V1, f), path.join(dir, f));
  for (const ts of ['TS_01', 'TS_02']) {
    fs.symlinkSync(path.join(V1, 'tilt_series', `${ts}.mrcs`), path.join(dir, 'tilt_series', `${ts}.mrcs`));
    const blocks = readStar(path.join(V1, 'tilt_series', `${ts}.star`));
    for (const b of blocks) {
      const u = b.labels.indexOf('rlnDefocusU');
      const v = b.labels.indexOf('rlnDefocusV');
      if (u < 0 || v < 0) throw new Error(`${ts}.star has no rlnDefocusU/V`);
      for (const r of b.rows) for (const k of [u, v]) r[k] = (Number(r[k]) + deltaA).toFixed(6);
    }
    fs.writeFileSync(path.join(dir, 'tilt_series', `${ts}.star`), formatStar(blocks));
  }
}
