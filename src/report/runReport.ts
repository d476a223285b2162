/**
 * Run report written into the output directory after a reconstruction (issue 5, "Run report"):
 *
 *  - `fsc.json`: the gold-standard half-map FSC between half1.mrc and half2.mrc per shell, with
 *    the FSC 0.143 and 0.5 resolutions (same conventions and numbers as `tomorecon fsc`, see
 *    src/analysis/fsc.ts);
 *  - `fsc.star`: the same curve as RELION writes it (relion_postprocess / relion_image_handler
 *    --fsc): `data_general` with `_rlnFinalResolution`, and a `data_fsc` loop with
 *    `_rlnSpectralIndex`, `_rlnResolution` (1/Å), `_rlnAngstromResolution` and
 *    `_rlnFourierShellCorrelation`. Shell 0 gets RELION's placeholder resolution of 999 Å
 *    (1/999 1/Å); `_rlnFinalResolution` is 999 when the curve is below 0.143 from the start;
 *  - `report.png`: the central XY, XZ and YZ slices of merged.mrc and, with half maps, the FSC
 *    plot and the FSC 0.143 / 0.5 resolutions.
 *
 * Without half maps (no half1.mrc and no half2.mrc) there is no FSC: fsc.json and fsc.star are
 * not written (stale copies from an earlier run in the same directory are removed, so they never
 * describe other maps than the ones beside them) and report.png shows the slices and a note.
 *
 * Slices are displayed with y (resp. z) pointing up, as IMOD and ChimeraX show maps; each is
 * scaled linearly from its own 1st percentile (black) to its 99th percentile (white).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compareSpectra, crossingShell, readMapSpectrum, type FscComparison } from '../analysis/fsc.js';
import { formatResolution } from '../cli/fscCommand.js';
import { TomoError } from '../errors.js';
import { writeFileAtomic, fsReason } from '../formats/atomicWrite.js';
import { readMrc, type MrcHeader } from '../formats/mrc.js';
import { writeStarFile, type StarBlock } from '../formats/star.js';
import { encodePng } from './png.js';
import { Canvas, niceTicks, textWidth, type Rgb, WHITE, BLACK } from './plot.js';

export interface RunReportResult {
  /** Path of the written fsc.json, or null without half maps. */
  fscJson: string | null;
  /** Path of the written fsc.star, or null without half maps. */
  fscStar: string | null;
  /** Path of the written report.png. */
  png: string;
  /** FSC 0.143 resolution in Å (null without half maps or if the FSC is below 0.143 from the start). */
  resolution0143: number | null;
}

export const HALF1 = 'half1.mrc';
export const HALF2 = 'half2.mrc';
export const MERGED = 'merged.mrc';

// ---------------------------------------------------------------- colours and layout

export const CURVE_COLOR: Rgb = [31, 119, 180];
export const THRESHOLD_0143_COLOR: Rgb = [214, 39, 40];
export const THRESHOLD_05_COLOR: Rgb = [255, 127, 14];
const TEXT_COLOR: Rgb = [20, 20, 20];
const MUTED_COLOR: Rgb = [110, 110, 110];
const GRID_COLOR: Rgb = [228, 228, 228];
const FRAME_COLOR: Rgb = [160, 160, 160];

/** Text scale (font pixels are SCALE×SCALE) and line height of one text line. */
const SCALE = 2;
const LINE = 7 * SCALE;
const MARGIN = 20;
const GAP = 16;
/** Slices are upscaled (integer factor, nearest neighbour) to at least this many pixels. */
export const MIN_SLICE_PIXELS = 192;
const MIN_CONTENT_WIDTH = 600;
const PLOT_HEIGHT = 260;
const PLOT_LEFT = 84; // room for the y tick labels and the rotated axis title

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface ReportLayout {
  width: number;
  height: number;
  /** Upscaling factor of the slices. */
  zoom: number;
  /** Where the XY, XZ and YZ slices are drawn (in that order). */
  slices: { name: 'XY' | 'XZ' | 'YZ'; rect: Rect }[];
  /** Inner area of the FSC plot (inside the axes), or null without half maps. */
  plot: Rect | null;
  /** Top of the text line(s) under the plot (with FSC) or under the slices (without). */
  textY: number;
}

/** Geometry of report.png for an nx×ny×nz merged map, with or without the FSC plot. */
export function reportLayout(nx: number, ny: number, nz: number, withFsc: boolean): ReportLayout {
  const zoom = Math.max(1, Math.ceil(MIN_SLICE_PIXELS / Math.max(nx, ny, nz)));
  const dims: [('XY' | 'XZ' | 'YZ'), number, number][] = [
    ['XY', nx, ny],
    ['XZ', nx, nz],
    ['YZ', ny, nz],
  ];
  const rowW = dims.reduce((s, d) => s + d[1] * zoom, 0) + 2 * GAP;
  const rowH = Math.max(...dims.map((d) => d[2] * zoom));
  const width = Math.max(rowW, MIN_CONTENT_WIDTH) + 2 * MARGIN;
  let y = MARGIN + LINE + 22; // report title
  y += LINE + 8; // slice titles
  let x = Math.round((width - rowW) / 2);
  const slices = dims.map(([name, w, h]) => {
    const rect = { x, y, w: w * zoom, h: h * zoom };
    x += rect.w + GAP;
    return { name, rect };
  });
  y += rowH + 28;
  let plot: Rect | null = null;
  if (withFsc) {
    y += LINE + 12; // plot title
    y += LINE + 8; // top tick labels (Å)
    plot = { x: MARGIN + PLOT_LEFT, y, w: width - 2 * MARGIN - PLOT_LEFT - 12, h: PLOT_HEIGHT };
    y += PLOT_HEIGHT + 8 + LINE + 10 + LINE + 20; // x tick labels, axis title
  }
  const textY = y;
  const lines = withFsc ? 2 : 1;
  const height = textY + lines * LINE + (lines - 1) * 10 + MARGIN;
  return { width, height, zoom, slices, plot, textY };
}

// ---------------------------------------------------------------- slices

/**
 * Central sections of an nx×ny×nz map (x fastest), as w×h images with the top row first and the
 * second axis pointing up: XY at z = ⌊nz/2⌋, XZ at y = ⌊ny/2⌋, YZ at x = ⌊nx/2⌋.
 */
export function centralSlices(data: Float32Array, nx: number, ny: number, nz: number): { name: 'XY' | 'XZ' | 'YZ'; at: number; w: number; h: number; values: Float32Array }[] {
  const cx = nx >> 1, cy = ny >> 1, cz = nz >> 1;
  const at = (x: number, y: number, z: number): number => data[(z * ny + y) * nx + x];
  const xy = new Float32Array(nx * ny);
  for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) xy[(ny - 1 - y) * nx + x] = at(x, y, cz);
  const xz = new Float32Array(nx * nz);
  for (let z = 0; z < nz; z++) for (let x = 0; x < nx; x++) xz[(nz - 1 - z) * nx + x] = at(x, cy, z);
  const yz = new Float32Array(ny * nz);
  for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) yz[(nz - 1 - z) * ny + y] = at(cx, y, z);
  return [
    { name: 'XY', at: cz, w: nx, h: ny, values: xy },
    { name: 'XZ', at: cy, w: nx, h: nz, values: xz },
    { name: 'YZ', at: cx, w: ny, h: nz, values: yz },
  ];
}

/**
 * 8-bit version of `values`, linear between the 1st percentile (0) and the 99th (255); if those
 * coincide, between min and max; a constant image is mid-gray. Non-finite values are black.
 */
export function toGray8(values: Float32Array, lowPct = 0.01, highPct = 0.99): Uint8Array {
  // A typed numeric sort (no comparator calls); it orders −0 before 0, which changes no output.
  let count = 0;
  const finite = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) if (Number.isFinite(values[i])) finite[count++] = values[i];
  finite.subarray(0, count).sort();
  const out = new Uint8Array(values.length);
  if (count === 0) return out;
  const m = count - 1;
  let lo = finite[Math.floor(lowPct * m)];
  let hi = finite[Math.ceil(highPct * m)];
  if (!(hi > lo)) {
    lo = finite[0];
    hi = finite[m];
  }
  if (!(hi > lo)) return out.fill(128);
  const k = 255 / (hi - lo);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    out[i] = Number.isFinite(v) ? Math.max(0, Math.min(255, Math.round((v - lo) * k))) : 0;
  }
  return out;
}

// ---------------------------------------------------------------- FSC outputs

interface FscSummary {
  n: number;
  pixelSize: number;
  curve: Float64Array;
  /** Å; Infinity: below the threshold from the start; 2·px (with atNyquist) if never crossed. */
  res0143: number;
  res05: number;
  atNyquist0143: boolean;
  atNyquist05: boolean;
}

function summarise(c: FscComparison): FscSummary {
  return {
    n: c.n,
    pixelSize: c.pixelSize,
    curve: c.curve,
    res0143: c.fsc0143,
    res05: c.fsc05,
    atNyquist0143: c.fsc0143AtNyquist,
    atNyquist05: c.fsc05AtNyquist,
  };
}

const finiteOrNull = (v: number): number | null => (Number.isFinite(v) ? v : null);

function fscJsonText(s: FscSummary, createdBy: string): string {
  const obj = {
    pixelSize: s.pixelSize,
    box: s.n,
    shells: Array.from(s.curve, (v, i) => ({ shell: i, resolution: i === 0 ? null : (s.n * s.pixelSize) / i, fsc: v })),
    resolution0143: finiteOrNull(s.res0143),
    resolution05: finiteOrNull(s.res05),
    halfMaps: [HALF1, HALF2],
    createdBy,
  };
  return JSON.stringify(obj, null, 2) + '\n';
}

function fscStarBlocks(s: FscSummary, file: string): StarBlock[] {
  const general: StarBlock = {
    name: 'general',
    kind: 'list',
    labels: ['rlnFinalResolution', 'rlnUnfilteredMapHalf1', 'rlnUnfilteredMapHalf2'],
    rows: [[(Number.isFinite(s.res0143) ? s.res0143 : 999).toFixed(6), HALF1, HALF2]],
    rowLines: [0],
    source: file,
  };
  const rows: string[][] = [];
  s.curve.forEach((v, i) => {
    const res = i > 0 ? (s.n * s.pixelSize) / i : 999; // RELION's placeholder for shell 0
    rows.push([String(i), (1 / res).toFixed(6), res.toFixed(6), v.toFixed(6)]);
  });
  const fscBlock: StarBlock = {
    name: 'fsc',
    kind: 'loop',
    labels: ['rlnSpectralIndex', 'rlnResolution', 'rlnAngstromResolution', 'rlnFourierShellCorrelation'],
    rows,
    rowLines: rows.map(() => 0),
    source: file,
  };
  return [general, fscBlock];
}

// ---------------------------------------------------------------- drawing

const fmtPixelSize = (px: number): string => String(Number(px.toFixed(3)));

function drawSlices(cv: Canvas, layout: ReportLayout, merged: { header: MrcHeader; data: Float32Array }): void {
  const { nx, ny, nz } = merged.header;
  const slices = centralSlices(merged.data, nx, ny, nz);
  const axis = { XY: 'z', XZ: 'y', YZ: 'x' } as const;
  slices.forEach((s, i) => {
    const r = layout.slices[i].rect;
    cv.text(r.x + r.w / 2, r.y - LINE - 8, `${s.name} (${axis[s.name]} = ${s.at})`, TEXT_COLOR, SCALE, 'center');
    cv.strokeRect(r.x - 1, r.y - 1, r.w + 2, r.h + 2, FRAME_COLOR);
    cv.drawGray(r.x, r.y, toGray8(s.values), s.w, s.h, layout.zoom);
  });
}

function drawFscPlot(cv: Canvas, r: Rect, s: FscSummary): void {
  const { n, pixelSize: px, curve } = s;
  const last = curve.length - 1;
  const xMax = last / (n * px); // highest shell kept (Nyquist for even n), 1/Å
  // Shell 0 is the maps' mean: not part of the resolution estimate (crossingShell skips it too)
  // and often meaningless (≈ ±1 for near-zero-mean half maps), so it is neither plotted nor
  // allowed to stretch the y range.
  let minV = 0;
  for (let i = 1; i < curve.length; i++) if (Number.isFinite(curve[i])) minV = Math.min(minV, curve[i]);
  const yMin = Math.max(-1, Math.floor(minV * 5 - 1e-9) / 5);
  const yMax = 1;
  const X = (f: number): number => r.x + (f / xMax) * (r.w - 1);
  const Y = (v: number): number => r.y + ((yMax - Math.max(yMin, Math.min(yMax, v))) / (yMax - yMin)) * (r.h - 1);

  // title
  cv.text(r.x + r.w / 2, r.y - 2 * LINE - 20, `Half-map FSC (${HALF1} vs ${HALF2})`, TEXT_COLOR, SCALE, 'center');

  // grid and tick labels
  const yt = niceTicks(yMin, yMax, 7);
  for (const v of yt.ticks) {
    const y = Math.round(Y(v));
    cv.line(r.x, y, r.x + r.w - 1, y, v === 0 ? FRAME_COLOR : GRID_COLOR);
    cv.line(r.x - 5, y, r.x - 1, y, BLACK);
    cv.text(r.x - 9, y - LINE / 2, v.toFixed(yt.decimals).replace('-', '−'), TEXT_COLOR, SCALE, 'right');
  }
  const xt = niceTicks(0, xMax, 6);
  for (const f of xt.ticks) {
    const x = Math.round(X(f));
    cv.line(x, r.y, x, r.y + r.h - 1, GRID_COLOR);
    cv.line(x, r.y + r.h, x, r.y + r.h + 4, BLACK);
    cv.text(x, r.y + r.h + 8, f.toFixed(xt.decimals), TEXT_COLOR, SCALE, 'center');
    if (f > 0) {
      cv.line(x, r.y - 5, x, r.y - 1, MUTED_COLOR);
      const label = `${(1 / f).toFixed(1)} Å`;
      const half = textWidth(label, SCALE) / 2;
      const cx = Math.min(x, cv.width - MARGIN / 2 - half); // keep the last label inside the image
      cv.text(cx, r.y - LINE - 8, label, MUTED_COLOR, SCALE, 'center');
    }
  }
  cv.text(r.x + r.w / 2, r.y + r.h + 8 + LINE + 10, 'Spatial frequency (1/Å)', TEXT_COLOR, SCALE, 'center');
  cv.textVertical(MARGIN, r.y + r.h / 2, 'FSC', TEXT_COLOR, SCALE);

  // thresholds
  for (const [t, c] of [[0.5, THRESHOLD_05_COLOR], [0.143, THRESHOLD_0143_COLOR]] as const) {
    const y = Math.round(Y(t));
    cv.line(r.x, y, r.x + r.w - 1, y, c, 2, [8, 5]);
    cv.text(r.x + r.w - 6, y - LINE - 5, String(t), c, SCALE, 'right');
  }

  // curve, from shell 1
  const pts: [number, number][] = [];
  for (let i = 1; i < curve.length; i++) {
    if (Number.isFinite(curve[i])) pts.push([X(i / (n * px)), Y(curve[i])]);
  }
  cv.polyline(pts, CURVE_COLOR, 3);
  for (const [x, y] of pts) cv.fillRect(x - 2, y - 2, 5, 5, CURVE_COLOR);

  // where the curve crosses 0.143
  const c = crossingShell(curve, 0.143);
  if (c !== null && c > 0) {
    const x = Math.round(X(c / (n * px)));
    const y = Math.round(Y(0.143));
    cv.line(x, y, x, r.y + r.h - 1, THRESHOLD_0143_COLOR, 2, [4, 4]);
    const label = `${((n * px) / c).toFixed(2)} Å`;
    const right = x + 8 + textWidth(label, SCALE) <= r.x + r.w - 4;
    cv.text(right ? x + 8 : x - 8, r.y + r.h - LINE - 8, label, THRESHOLD_0143_COLOR, SCALE, right ? 'left' : 'right');
  }

  // axes frame last, over grid and curve ends
  cv.strokeRect(r.x - 1, r.y - 1, r.w + 2, r.h + 2, BLACK);
}

function renderReport(merged: { header: MrcHeader; data: Float32Array }, fsc: FscSummary | null, createdBy: string): Canvas {
  const { nx, ny, nz, pixelSize } = merged.header;
  const layout = reportLayout(nx, ny, nz, fsc !== null);
  const cv = new Canvas(layout.width, layout.height, WHITE);
  const dims = nx === ny && ny === nz ? `${nx}³` : `${nx}×${ny}×${nz}`;
  const pxText = pixelSize[0] > 0 ? `, ${fmtPixelSize(pixelSize[0])} Å/px` : '';
  cv.text(MARGIN, MARGIN, `${MERGED}: ${dims} voxels${pxText}`, TEXT_COLOR, SCALE);
  cv.text(layout.width - MARGIN, MARGIN, createdBy, MUTED_COLOR, SCALE, 'right');
  drawSlices(cv, layout, merged);
  if (fsc && layout.plot) {
    drawFscPlot(cv, layout.plot, fsc);
    cv.text(MARGIN, layout.textY, formatResolution('FSC 0.143', fsc.res0143, fsc.atNyquist0143, 0.143), THRESHOLD_0143_COLOR, SCALE);
    cv.text(MARGIN, layout.textY + LINE + 10, formatResolution('FSC 0.5', fsc.res05, fsc.atNyquist05, 0.5), THRESHOLD_05_COLOR, SCALE);
  } else {
    cv.text(MARGIN, layout.textY, `No half maps (${HALF1}, ${HALF2}): no half-map FSC`, TEXT_COLOR, SCALE);
  }
  return cv;
}

// ---------------------------------------------------------------- entry point

let cachedVersion: string | null = null;

/** `tomorecon <version>` from the package.json above this module (src/ or dist/src/). */
export function createdByString(): string {
  if (cachedVersion === null) {
    cachedVersion = '';
    let dir = path.dirname(fileURLToPath(import.meta.url));
    for (let i = 0; i < 5; i++) {
      try {
        const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
        if (pkg.name === 'tomorecon' && typeof pkg.version === 'string') {
          cachedVersion = pkg.version;
          break;
        }
      } catch {
        /* not here: go up */
      }
      dir = path.dirname(dir);
    }
  }
  return cachedVersion ? `tomorecon ${cachedVersion}` : 'tomorecon';
}

function removeStale(file: string): void {
  try {
    fs.rmSync(file, { force: true });
  } catch (e) {
    throw new TomoError(`cannot remove stale ${file}: ${fsReason(e)}`);
  }
}

/**
 * Reads half1/half2/merged from outDir, writes fsc.json, fsc.star and report.png (atomically).
 * Whatever half1.mrc/half2.mrc/merged.mrc are (cropped or not) are used as they are.
 * Throws a TomoError if merged.mrc is missing or only one of the half maps exists.
 * `halfMapFsc`: the FSC of half1.mrc and half2.mrc when the caller has it already (the
 * finalisation pool computes it as soon as the half maps are written); computed here otherwise.
 * `halfMaps: false`: the run wrote no half maps (no half sets), so any in outDir are an earlier
 * run's: no FSC (and the old fsc.json/fsc.star go).
 */
export function writeRunReport(outDir: string, halfMapFsc?: FscComparison, { halfMaps = true }: { halfMaps?: boolean } = {}): RunReportResult {
  const mergedPath = path.join(outDir, MERGED);
  const half1 = path.join(outDir, HALF1);
  const half2 = path.join(outDir, HALF2);
  if (!fs.existsSync(mergedPath)) {
    throw new TomoError(`run report: ${mergedPath} does not exist (the report needs the merged map)`);
  }
  const has1 = halfMaps && fs.existsSync(half1);
  const has2 = halfMaps && fs.existsSync(half2);
  if (has1 !== has2) {
    throw new TomoError(`run report: ${has1 ? half1 : half2} exists but ${has1 ? half2 : half1} does not; the half-map FSC needs both`);
  }
  const merged = readMrc(mergedPath);
  const createdBy = createdByString();
  const jsonPath = path.join(outDir, 'fsc.json');
  const starPath = path.join(outDir, 'fsc.star');
  let summary: FscSummary | null = null;
  if (has1) {
    summary = summarise(halfMapFsc ?? compareSpectra(readMapSpectrum(half1), readMapSpectrum(half2)));
    writeFileAtomic(jsonPath, fscJsonText(summary, createdBy));
    writeStarFile(starPath, fscStarBlocks(summary, starPath));
  } else {
    removeStale(jsonPath);
    removeStale(starPath);
  }
  const pngPath = path.join(outDir, 'report.png');
  writeFileAtomic(pngPath, encodePng(renderReport(merged, summary, createdBy).toImage()));
  return {
    fscJson: summary ? jsonPath : null,
    fscStar: summary ? starPath : null,
    png: pngPath,
    resolution0143: summary ? finiteOrNull(summary.res0143) : null,
  };
}
