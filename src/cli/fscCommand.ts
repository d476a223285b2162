/**
 * `tomorecon fsc A.mrc B.mrc [--json]`: Fourier shell correlation of two maps (conventions in
 * src/analysis/fsc.ts), the FSC 0.5 and 0.143 resolutions and the real-space Pearson r.
 */
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { crossingShell, fsc, pearson, resolutionAt } from '../analysis/fsc.js';
import { TomoError } from '../errors.js';
import { readMrc } from '../formats/mrc.js';
import type { CommandModule } from './commands.js';
import { boolFlag } from './flags.js';

export interface MapComparison {
  fileA: string;
  fileB: string;
  n: number;
  pixelSize: number;
  curve: Float64Array;
  /** Resolutions in Å (Infinity: below the threshold from the start). */
  fsc05: number;
  fsc0143: number;
  /** Whether the curve stays above the threshold up to Nyquist (the value is then 2·px). */
  fsc05AtNyquist: boolean;
  fsc0143AtNyquist: boolean;
  pearson: number;
}

/** Reads two cubic maps of the same size and pixel size and compares them. */
export function compareMapFiles(fileA: string, fileB: string): MapComparison {
  const a = readMrc(fileA);
  const b = readMrc(fileB);
  const ha = a.header;
  const hb = b.header;
  for (const h of [ha, hb]) {
    if (h.nx !== h.ny || h.nx !== h.nz) {
      throw new TomoError(`${h.path}: the FSC needs a cubic map, this one is ${h.nx}×${h.ny}×${h.nz}`);
    }
    if (h.nx < 4) throw new TomoError(`${h.path}: map of ${h.nx}³ voxels is too small for an FSC`);
  }
  if (ha.nx !== hb.nx) {
    throw new TomoError(`maps differ in size: ${fileA} is ${ha.nx}³, ${fileB} is ${hb.nx}³`);
  }
  const pa = ha.pixelSize[0];
  const pb = hb.pixelSize[0];
  if (Math.abs(pa - pb) > 1e-3 * Math.max(Math.abs(pa), Math.abs(pb))) {
    throw new TomoError(`maps differ in pixel size: ${fileA} has ${pa} Å, ${fileB} has ${pb} Å`);
  }
  const n = ha.nx;
  // A header without a pixel size (0) gives resolutions in pixels·1 = "Å at 1 Å/px".
  const px = pa > 0 ? pa : 1;
  const curve = fsc(a.data, b.data, n);
  return {
    fileA,
    fileB,
    n,
    pixelSize: px,
    curve,
    fsc05: resolutionAt(curve, 0.5, n, px),
    fsc0143: resolutionAt(curve, 0.143, n, px),
    fsc05AtNyquist: crossingShell(curve, 0.5) === null,
    fsc0143AtNyquist: crossingShell(curve, 0.143) === null,
    pearson: pearson(a.data, b.data),
  };
}

/** `FSC 0.143: 8.65 Å` (with a note when the curve never crosses). */
export function formatResolution(label: string, value: number, atNyquist: boolean, threshold: number): string {
  if (!Number.isFinite(value)) return `${label}: none (FSC is below ${threshold} from the first shell)`;
  if (atNyquist) return `${label}: ${value.toFixed(2)} Å (Nyquist; FSC stays above ${threshold})`;
  return `${label}: ${value.toFixed(2)} Å`;
}

function report(c: MapComparison): string {
  const lines = [`# FSC of ${c.fileA} and ${c.fileB} (${c.n}³, ${c.pixelSize} Å/px)`, 'shell  resolution_A      FSC'];
  c.curve.forEach((v, s) => {
    const res = s === 0 ? 'inf' : ((c.n * c.pixelSize) / s).toFixed(2);
    lines.push(`${String(s).padStart(5)}  ${res.padStart(12)}  ${v.toFixed(4).padStart(7)}`);
  });
  lines.push(formatResolution('FSC 0.5', c.fsc05, c.fsc05AtNyquist, 0.5));
  lines.push(formatResolution('FSC 0.143', c.fsc0143, c.fsc0143AtNyquist, 0.143));
  lines.push(`Pearson r: ${c.pearson.toFixed(4)}`);
  return lines.join('\n') + '\n';
}

function toJson(c: MapComparison): string {
  const fin = (v: number): number | null => (Number.isFinite(v) ? Number(v.toFixed(4)) : null);
  return (
    JSON.stringify({
      map_a: c.fileA,
      map_b: c.fileB,
      box: c.n,
      pixel_size: c.pixelSize,
      pearson: Number(c.pearson.toFixed(6)),
      'fsc_0.5_A': fin(c.fsc05),
      'fsc_0.143_A': fin(c.fsc0143),
      'fsc_0.5_at_nyquist': c.fsc05AtNyquist,
      'fsc_0.143_at_nyquist': c.fsc0143AtNyquist,
      shells: Array.from(c.curve, (v, s) => ({
        shell: s,
        resolution_A: s === 0 ? null : Number(((c.n * c.pixelSize) / s).toFixed(4)),
        fsc: Number(v.toFixed(6)),
      })),
    }) + '\n'
  );
}

export const fscCommand: CommandModule = {
  name: 'fsc <mapA> <mapB>',
  describe: 'Fourier shell correlation of two maps: FSC 0.5 / 0.143 resolution and Pearson r',
  builder: (y: Argv) =>
    y
      .positional('mapA', { type: 'string', describe: 'First map (MRC, cubic)' })
      .positional('mapB', { type: 'string', describe: 'Second map (same size and pixel size)' })
      .option('json', { type: 'boolean', describe: 'Print one JSON object instead of the table' })
      .strict(),
  handler: async (args: ArgumentsCamelCase) => {
    const c = compareMapFiles(String(args.mapA), String(args.mapB));
    process.stdout.write(boolFlag(args, 'json') ? toJson(c) : report(c));
  },
};
