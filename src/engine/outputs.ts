/**
 * Finalisation and output files (numerics.md §8–§9, formats.md §7.4): half1/half2/merged maps,
 * data_* and weight_* terms, *_full maps when cropping. Every file is written under a temporary
 * name and renamed, so an existing map is only ever replaced by a complete one.
 */
import path from 'node:path';
import { writeMrc } from '../formats/mrc.js';
import { Accumulator } from '../recon/backproject.js';
import { centreCrop, divideByWeight, griddingCorrect, taper, weightToCentredFull } from '../recon/finalise.js';

export interface FinaliseOptions {
  s: number;
  crop: number;
  taper: number;
  snr: number;
  pixelSize: number;
  outDir: string;
}

/** Names of the files a run writes, in order. */
export function outputNames(hasHalfSets: boolean, cropping: boolean): string[] {
  const tags = hasHalfSets ? ['half1', 'half2', 'merged'] : ['merged'];
  return tags.flatMap((t) => [`data_${t}.mrc`, `weight_${t}.mrc`, ...(cropping ? [`${t}_full.mrc`] : []), `${t}.mrc`]);
}

/** Reconstructs and writes one tag from its data and weight sums. Returns the final map. */
export function writeTag(tag: string, acc: Accumulator, o: FinaliseOptions): Float64Array {
  const { s } = o;
  const out = (name: string): string => path.join(o.outDir, name);
  const data = griddingCorrect(acc.data, s);
  writeMrc(out(`data_${tag}.mrc`), data, s, s, s, o.pixelSize);
  writeMrc(out(`weight_${tag}.mrc`), weightToCentredFull(acc.weight, s), s, s, s, o.pixelSize);
  const corrected = divideByWeight(data, acc.weight, s, o.snr);
  if (o.crop > 0 && o.crop < s) {
    writeMrc(out(`${tag}_full.mrc`), corrected, s, s, s, o.pixelSize);
    const { map, n } = centreCrop(corrected, s, o.crop);
    taper(map, n, o.taper);
    writeMrc(out(`${tag}.mrc`), map, n, n, n, o.pixelSize);
    return map;
  }
  taper(corrected, s, o.taper);
  writeMrc(out(`${tag}.mrc`), corrected, s, s, s, o.pixelSize);
  return corrected;
}

/**
 * Writes all tags. With half sets the merged sums are half1 + half2, and weight_merged is that
 * sum (RELION writes half 1's weight there, [Q1]; decisions.md fixes it).
 */
export function writeOutputs(halves: [Accumulator, Accumulator], hasHalfSets: boolean, o: FinaliseOptions): void {
  if (!hasHalfSets) {
    writeTag('merged', halves[0], o);
    return;
  }
  const merged: Accumulator = { data: halves[0].data.slice(), weight: halves[0].weight.slice() };
  for (let i = 0; i < merged.data.length; i++) merged.data[i] += halves[1].data[i];
  for (let i = 0; i < merged.weight.length; i++) merged.weight[i] += halves[1].weight[i];
  writeTag('half1', halves[0], o);
  writeTag('half2', halves[1], o);
  writeTag('merged', merged, o);
}
