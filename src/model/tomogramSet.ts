/**
 * Tomogram sets (formats.md §3): RELION 5 (global table + one STAR file per tilt series) and
 * RELION 4 (global table followed by one block per tomogram, explicit projection matrices).
 * Reading a set reads its STAR files (every tomogram's global row and tilt table); a tomogram's
 * tilt table and image headers are looked at only when it is loaded (TomogramSet.load), which a
 * run does for the tomograms that have particles and for tomogram 0, as RELION does (formats.md
 * §3.7, §7.2): a set may list tomograms whose images are gone. Pixels are loaded by the engine
 * (tiltStack.ts).
 */
import { TomoError } from '../errors.js';
import { StarBlock, StarTable, findBlock, readStar } from '../formats/star.js';
import { parseImageRef } from '../formats/imagePath.js';
import { readMrcHeader } from '../formats/mrc.js';
import { Mat4, Vec3 } from '../geometry/matrix.js';
import { projectionFromAngles } from '../geometry/projection.js';
import { CtfParams } from '../physics/ctf.js';
import { Deformation, DeformationType, deformationCoefficientCount } from '../geometry/deformation.js';

/** Where the pixels of one tilt come from: a section of an MRC file. */
export interface FrameSource {
  path: string;
  section: number; // 0-based z index in that file
}

/** A tomogram as its row of data_global describes it (what reading the particles needs). */
export interface TomogramEntry {
  index: number;
  name: string;
  tiltTableSource: string; // file (and block) the per-tilt rows came from, for messages
  size: Vec3; // w0, h0, d0 in unbinned tilt-series pixels
  centre: Vec3; // floating halves (Tomogram::centre)
  hand: number;
  pixelSize: number;
  voltage: number;
  cs: number;
  q0: number;
  bPerDose: number;
  defocusSlope: number;
  opticsGroupName: string | null;
}

/** A loaded tomogram: its tilts, their images' size, geometry, CTF and dose. */
export interface Tomogram extends TomogramEntry {
  frameCount: number;
  imageW: number;
  imageH: number;
  frames: FrameSource[];
  projections: Mat4[];
  ctf: CtfParams[];
  dose: number[]; // rlnMicrographPreExposure per frame
  /** 2-D tilt-image deformations (RELION 5 modular alignment), or null. */
  deformation: Deformation | null;
}

export interface TomogramSet {
  source: string;
  /** Every file the set was read from: `source` and, in RELION 5's layout, the tilt-series STAR files. */
  files: string[];
  tomograms: TomogramEntry[];
  byName: Map<string, TomogramEntry>;
  /** The tomogram with its tilt table and image headers read and checked (once; a TomoError if they are not right). */
  load(t: TomogramEntry): Tomogram;
}

const R4_PROJ = ['rlnTomoProjX', 'rlnTomoProjY', 'rlnTomoProjZ', 'rlnTomoProjW'];
const ANGLE_LABELS = ['rlnTomoYTilt', 'rlnTomoZRot', 'rlnTomoXShiftAngst', 'rlnTomoYShiftAngst'];

export function readTomogramSet(file: string): TomogramSet {
  const blocks = readStar(file);
  const globalBlock = findBlock(blocks, 'global');
  if (!globalBlock || globalBlock.rows.length === 0) {
    throw new TomoError(`${file}: no tomograms (block data_global is missing or empty)`);
  }
  const g = new StarTable(globalBlock);
  if (!g.has('rlnTomoName')) {
    throw new TomoError(`${file}: data_global has no _rlnTomoName column`);
  }
  const relion5 = g.has('rlnTomoTiltSeriesStarFile');
  if (!relion5 && blocks[0] !== globalBlock) {
    throw new TomoError(`${file}: a RELION 4 tomogram set must start with data_global`);
  }
  const tomograms: TomogramEntry[] = [];
  const byName = new Map<string, TomogramEntry>();
  const loaders: (() => Tomogram)[] = [];
  const files = new Set<string>([file]);
  for (let t = 0; t < g.rowCount; t++) {
    const name = g.str(t, 'rlnTomoName');
    if (byName.has(name)) {
      throw new TomoError(`${file}: tomogram ${name} is listed twice in data_global`);
    }
    let tilt: StarBlock;
    let tiltSource: string;
    if (relion5) {
      const tsFile = g.str(t, 'rlnTomoTiltSeriesStarFile');
      const tsBlocks = readStar(tsFile);
      const b = findBlock(tsBlocks, name);
      if (!b || b.rows.length === 0) {
        throw new TomoError(`${tsFile}: no tilt table data_${name} (the block must be named after the tomogram)`);
      }
      tilt = b;
      tiltSource = tsFile;
      files.add(tsFile);
    } else {
      const b = blocks[t + 1];
      if (!b || b.name !== name) {
        throw new TomoError(
          `${file}: RELION 4 tomogram set is corrupted: block ${t + 2} should be data_${name}, found ${b ? 'data_' + b.name : 'nothing'}`,
        );
      }
      tilt = b;
      tiltSource = `${file} (data_${name})`;
    }
    const entry = tomogramEntry(file, g, t, name, tiltSource);
    tomograms.push(entry);
    byName.set(name, entry);
    let loaded: Tomogram | null = null;
    loaders.push(() => (loaded ??= loadTomogram(entry, file, g, t, tilt)));
  }
  const load = (e: TomogramEntry): Tomogram => {
    if (tomograms[e.index] !== e) throw new Error(`tomogram ${e.name} is not of the set ${file}`);
    return loaders[e.index]();
  };
  return { source: file, files: [...files], tomograms, byName, load };
}

function tomogramEntry(file: string, g: StarTable, t: number, name: string, tiltSource: string): TomogramEntry {
  for (const l of ['rlnTomoSizeX', 'rlnTomoSizeY', 'rlnTomoSizeZ']) {
    if (!g.has(l)) throw new TomoError(`${file}: tomogram ${name} has no ${l} (data_global needs rlnTomoSizeX/Y/Z)`);
  }
  const size: Vec3 = [g.num(t, 'rlnTomoSizeX'), g.num(t, 'rlnTomoSizeY'), g.num(t, 'rlnTomoSizeZ')];
  const pixelSize = g.num(t, 'rlnTomoTiltSeriesPixelSize');
  if (!(pixelSize >= 0.001)) {
    throw new TomoError(`${file}: tomogram ${name} has rlnTomoTiltSeriesPixelSize ${pixelSize}; expected a positive pixel size in Å`);
  }
  const q0 = g.num(t, 'rlnAmplitudeContrast');
  if (!(q0 >= 0 && q0 <= 1)) {
    throw new TomoError(`${file}: tomogram ${name} has rlnAmplitudeContrast ${q0}; expected a fraction in [0, 1]`);
  }
  return {
    index: t,
    name,
    tiltTableSource: tiltSource,
    size,
    centre: [size[0] / 2, size[1] / 2, size[2] / 2],
    hand: g.num(t, 'rlnTomoHand'),
    pixelSize,
    voltage: g.num(t, 'rlnVoltage'),
    cs: g.num(t, 'rlnSphericalAberration'),
    q0,
    bPerDose: g.num(t, 'rlnCtfBfactorPerElectronDose', 0),
    defocusSlope: g.num(t, 'rlnTomoDefocusSlope', 1),
    opticsGroupName: g.has('rlnOpticsGroupName') ? g.str(t, 'rlnOpticsGroupName') : null,
  };
}

function loadTomogram(entry: TomogramEntry, file: string, g: StarTable, t: number, tiltBlock: StarBlock): Tomogram {
  const { name, size, pixelSize, tiltTableSource: tiltSource } = entry;
  const tt = new StarTable(tiltBlock);
  if (!tt.has('rlnMicrographPreExposure')) {
    throw new TomoError(`${tiltSource}: tilt table data_${name} has no _rlnMicrographPreExposure column`);
  }
  // Frames: one stack file (option A) or one image reference per row (option B).
  let frames: FrameSource[];
  let frameCount: number;
  if (g.has('rlnTomoTiltSeriesName')) {
    const ref = parseImageRef(g.str(t, 'rlnTomoTiltSeriesName'));
    frameCount = g.has('rlnTomoFrameCount') ? g.int(t, 'rlnTomoFrameCount') : tt.rowCount;
    if (frameCount > tt.rowCount || frameCount < 1) {
      throw new TomoError(
        `${file}: tomogram ${name} has rlnTomoFrameCount ${frameCount} but its tilt table has ${tt.rowCount} rows`,
      );
    }
    frames = [];
    for (let f = 0; f < frameCount; f++) frames.push({ path: ref.path, section: f });
  } else {
    if (!tt.has('rlnMicrographName')) {
      throw new TomoError(
        `${tiltSource}: tilt table data_${name} has no _rlnMicrographName column and data_global has no _rlnTomoTiltSeriesName`,
      );
    }
    frameCount = tt.rowCount;
    frames = [];
    for (let f = 0; f < frameCount; f++) {
      const ref = parseImageRef(tt.str(f, 'rlnMicrographName'));
      frames.push({ path: ref.path, section: ref.index ?? 0 });
    }
  }
  // Image size from the first frame's header; every other file must agree (checked per file).
  const headers = new Map<string, ReturnType<typeof readMrcHeader>>();
  for (const fr of frames) {
    let h = headers.get(fr.path);
    if (!h) {
      h = readMrcHeader(fr.path);
      headers.set(fr.path, h);
    }
    if (fr.section >= h.nz) {
      throw new TomoError(`${fr.path}: tomogram ${name} needs section ${fr.section + 1} but the file has ${h.nz}`);
    }
  }
  const first = headers.get(frames[0].path)!;
  for (const h of headers.values()) {
    if (h.nx !== first.nx || h.ny !== first.ny) {
      throw new TomoError(
        `tomogram ${name}: tilt images differ in size (${first.path} is ${first.nx}×${first.ny}, ${h.path} is ${h.nx}×${h.ny})`,
      );
    }
  }
  if (g.has('rlnTomoTiltSeriesName')) {
    const h = first;
    if (h.nz !== frameCount) {
      throw new TomoError(`${h.path}: stack has ${h.nz} sections but tomogram ${name} has ${frameCount} tilts`);
    }
  }
  const imageW = first.nx;
  const imageH = first.ny;

  const projections: Mat4[] = [];
  const haveR4 = R4_PROJ.every((l) => tt.has(l));
  const haveAngles = ANGLE_LABELS.every((l) => tt.has(l));
  if (!haveR4 && !haveAngles) {
    throw new TomoError(
      `${tiltSource}: tilt table data_${name} has neither projection matrices (rlnTomoProjX..W) nor angles (${ANGLE_LABELS.join(', ')})`,
    );
  }
  const ctf: CtfParams[] = [];
  const dose: number[] = [];
  for (let f = 0; f < frameCount; f++) {
    if (haveR4) {
      const m = new Float64Array(16);
      R4_PROJ.forEach((l, i) => {
        const row = tt.vec(f, l);
        if (row.length !== 4) {
          throw new TomoError(`${tiltSource}: row ${f + 1} of data_${name}: ${l} needs 4 numbers, found ${row.length}`);
        }
        for (let j = 0; j < 4; j++) m[i * 4 + j] = row[j];
      });
      projections.push(m);
    } else {
      projections.push(
        projectionFromAngles(
          {
            xTilt: tt.num(f, 'rlnTomoXTilt', 0),
            yTilt: tt.num(f, 'rlnTomoYTilt'),
            zRot: tt.num(f, 'rlnTomoZRot'),
            xShiftAngst: tt.num(f, 'rlnTomoXShiftAngst'),
            yShiftAngst: tt.num(f, 'rlnTomoYShiftAngst'),
          },
          pixelSize,
          imageW,
          imageH,
          size,
        ),
      );
    }
    ctf.push({
      defocusU: tt.num(f, 'rlnDefocusU'),
      defocusV: tt.num(f, 'rlnDefocusV'),
      defocusAngle: tt.num(f, 'rlnDefocusAngle'),
      voltage: g.num(t, 'rlnVoltage'),
      cs: g.num(t, 'rlnSphericalAberration'),
      q0: g.num(t, 'rlnAmplitudeContrast'),
      bfactor: tt.num(f, 'rlnCtfBfactor', 0),
      scale: tt.num(f, 'rlnCtfScalefactor', 1),
      phaseShift: tt.num(f, 'rlnPhaseShift', 0),
    });
    dose.push(tt.num(f, 'rlnMicrographPreExposure'));
  }
  let deformation: Deformation | null = null;
  if (g.has('rlnTomoDeformationGridSizeX') && g.has('rlnTomoDeformationGridSizeY')) {
    if (!g.has('rlnTomoDeformationType')) {
      throw new TomoError(`${file}: tomogram ${name} has a deformation grid but no _rlnTomoDeformationType`);
    }
    const type = g.str(t, 'rlnTomoDeformationType');
    const gx = g.int(t, 'rlnTomoDeformationGridSizeX');
    const gy = g.int(t, 'rlnTomoDeformationGridSizeY');
    const need = deformationCoefficientCount(type, gx, gy, `${file}: tomogram ${name}`);
    if (!tt.has('rlnTomoDeformationCoefficients')) {
      throw new TomoError(`${tiltSource}: tomogram ${name} is deformed (${type}) but data_${name} has no _rlnTomoDeformationCoefficients`);
    }
    const coefficients: Float64Array[] = [];
    for (let f = 0; f < frameCount; f++) {
      const v = tt.vec(f, 'rlnTomoDeformationCoefficients');
      if (v.length !== need) {
        throw new TomoError(
          `${tiltSource}: row ${f + 1} of data_${name} has ${v.length} deformation coefficients; a ${type} model on a ${gx}×${gy} grid needs ${need}`,
        );
      }
      coefficients.push(Float64Array.from(v));
    }
    deformation = { type: type as DeformationType, gridX: gx, gridY: gy, imageW, imageH, coefficients };
  }
  return {
    ...entry,
    deformation,
    frameCount,
    imageW,
    imageH,
    frames,
    projections,
    ctf,
    dose,
  };
}
