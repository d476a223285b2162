/**
 * `tomorecon fsc A.mrc B.mrc [--json]`: Fourier shell correlation of two maps (conventions in
 * src/analysis/fsc.ts), the FSC 0.5 and 0.143 resolutions and the real-space Pearson r.
 */
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { checkFscMap, checkFscPair, compareSpectra, pearson, type FscComparison, type MapSpectrum } from '../analysis/fsc.js';
import { rfft3 } from '../recon/fft.js';
import { readMrc } from '../formats/mrc.js';
import type { CommandModule } from './commands.js';
import { boolFlag } from './flags.js';

export interface MapComparison extends FscComparison {
  pearson: number;
  /** The headers give no pixel size: resolutions are in pixels (as at 1 Å/px). */
  noPixelSize: boolean;
}

/** Reads two cubic maps of the same size and pixel size and compares them. */
export function compareMapFiles(fileA: string, fileB: string): MapComparison {
  const a = readMrc(fileA);
  const b = readMrc(fileB);
  checkFscMap(a.header);
  checkFscMap(b.header);
  checkFscPair(a.header, b.header);
  const n = a.header.nx;
  const spectrum = (m: typeof a, file: string): MapSpectrum => ({ file, header: m.header, spectrum: rfft3(m.data, n, n, n) });
  return { ...compareSpectra(spectrum(a, fileA), spectrum(b, fileB)), pearson: pearson(a.data, b.data), noPixelSize: !(a.header.pixelSize[0] > 0) };
}

/** `FSC 0.143: 8.65 Å` (with a note when the curve never crosses). */
export function formatResolution(label: string, value: number, atNyquist: boolean, threshold: number): string {
  if (!Number.isFinite(value)) return `${label}: none (FSC is below ${threshold} from the first shell)`;
  if (atNyquist) return `${label}: ${value.toFixed(2)} Å (Nyquist; FSC stays above ${threshold})`;
  return `${label}: ${value.toFixed(2)} Å`;
}

function report(c: MapComparison): string {
  const px = c.noPixelSize ? 'no pixel size in the headers: resolutions in pixels' : `${c.pixelSize} Å/px`;
  const lines = [`# FSC of ${c.fileA} and ${c.fileB} (${c.n}³, ${px})`, 'shell  resolution_A      FSC'];
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
      pixel_size: c.noPixelSize ? null : c.pixelSize,
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
