/**
 * Finalisation in worker threads (used for large boxes) writes the same files as in the main thread.
 * Imports the compiled engine from dist/ (built by the global setup) so that the threads can start.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readMrc } from '../src/formats/mrc.js';
import { REPO } from './helpers/paths.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tomorecon-outputs-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('finalisation threads', () => {
  it('give the same maps as the main thread', async () => {
    const { writeOutputs } = (await import(path.join(REPO, 'dist/src/engine/outputs.js'))) as typeof import('../src/engine/outputs.js');
    const s = 16;
    const n = (s / 2 + 1) * s * s;
    const make = (seed: number) => {
      let a = seed;
      const r = (): number => ((a = (a * 1103515245 + 12345) % 2147483648) / 2147483648);
      return [0, 1].map(() => ({
        data: Float64Array.from({ length: 2 * n }, () => r() - 0.5),
        weight: Float64Array.from({ length: n }, () => r() + 0.1),
      })) as [{ data: Float64Array; weight: Float64Array }, { data: Float64Array; weight: Float64Array }];
    };
    const opts = (outDir: string) => ({ s, crop: 12, taper: 3, snr: -1, pixelSize: 2, outDir });
    const a = path.join(tmp, 'main');
    const b = path.join(tmp, 'threads');
    fs.mkdirSync(a);
    fs.mkdirSync(b);
    await writeOutputs(make(5), true, opts(a), 1);
    await writeOutputs(make(5), true, opts(b), 3);
    const files = fs.readdirSync(a).sort();
    expect(files).toEqual(fs.readdirSync(b).sort());
    expect(files).toHaveLength(12);
    for (const f of files) expect(readMrc(path.join(b, f)).data, f).toEqual(readMrc(path.join(a, f)).data);
  });
});
