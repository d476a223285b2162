/**
 * Tiny RGB raster for the run report: filled and outlined rectangles, (dashed, thick) lines,
 * nearest-neighbour blits of grayscale images and text in a built-in 5×7 bitmap font.
 * Coordinates are integer pixels, x to the right, y downwards, (0, 0) the top-left corner;
 * everything drawn outside the canvas is clipped.
 */
import type { RasterImage } from './png.js';

export type Rgb = readonly [number, number, number];

export const WHITE: Rgb = [255, 255, 255];
export const BLACK: Rgb = [0, 0, 0];

// ---------------------------------------------------------------- font

/**
 * 5×7 glyphs, rows top to bottom, `#` = ink. A glyph may have two extra rows below the baseline
 * (descenders of g, j, p, q, y and the comma). Characters without a glyph draw as a box.
 */
const GLYPHS: Record<string, string> = {
  ' ': '..... ..... ..... ..... ..... ..... .....',
  '0': '.###. #...# #..## #.#.# ##..# #...# .###.',
  '1': '..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.',
  '2': '.###. #...# ....# ...#. ..#.. .#... #####',
  '3': '##### ...#. ..#.. ...#. ....# #...# .###.',
  '4': '...#. ..##. .#.#. #..#. ##### ...#. ...#.',
  '5': '##### #.... ####. ....# ....# #...# .###.',
  '6': '..##. .#... #.... ####. #...# #...# .###.',
  '7': '##### ....# ...#. ..#.. .#... .#... .#...',
  '8': '.###. #...# #...# .###. #...# #...# .###.',
  '9': '.###. #...# #...# .#### ....# ...#. .##..',
  A: '.###. #...# #...# ##### #...# #...# #...#',
  B: '####. #...# #...# ####. #...# #...# ####.',
  C: '.###. #...# #.... #.... #.... #...# .###.',
  D: '###.. #..#. #...# #...# #...# #..#. ###..',
  E: '##### #.... #.... ####. #.... #.... #####',
  F: '##### #.... #.... ####. #.... #.... #....',
  G: '.###. #...# #.... #.### #...# #...# .####',
  H: '#...# #...# #...# ##### #...# #...# #...#',
  I: '.###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.',
  J: '..### ...#. ...#. ...#. ...#. #..#. .##..',
  K: '#...# #..#. #.#.. ##... #.#.. #..#. #...#',
  L: '#.... #.... #.... #.... #.... #.... #####',
  M: '#...# ##.## #.#.# #.#.# #...# #...# #...#',
  N: '#...# #...# ##..# #.#.# #..## #...# #...#',
  O: '.###. #...# #...# #...# #...# #...# .###.',
  P: '####. #...# #...# ####. #.... #.... #....',
  Q: '.###. #...# #...# #...# #.#.# #..#. .##.#',
  R: '####. #...# #...# ####. #.#.. #..#. #...#',
  S: '.#### #.... #.... .###. ....# ....# ####.',
  T: '##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..',
  U: '#...# #...# #...# #...# #...# #...# .###.',
  V: '#...# #...# #...# #...# #...# .#.#. ..#..',
  W: '#...# #...# #...# #.#.# #.#.# #.#.# .#.#.',
  X: '#...# #...# .#.#. ..#.. .#.#. #...# #...#',
  Y: '#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..',
  Z: '##### ....# ...#. ..#.. .#... #.... #####',
  'Å': '..#.. .#.#. ..#.. .###. #...# ##### #...#',
  a: '..... ..... .###. ....# .#### #...# .####',
  b: '#.... #.... #.##. ##..# #...# #...# ####.',
  c: '..... ..... .###. #.... #.... #...# .###.',
  d: '....# ....# .##.# #..## #...# #...# .####',
  e: '..... ..... .###. #...# ##### #.... .###.',
  f: '..##. .#..# .#... ###.. .#... .#... .#...',
  g: '..... ..... .#### #...# #...# #...# .#### ....# .###.',
  h: '#.... #.... #.##. ##..# #...# #...# #...#',
  i: '..#.. ..... .##.. ..#.. ..#.. ..#.. .###.',
  j: '...#. ..... ..##. ...#. ...#. ...#. ...#. #..#. .##..',
  k: '#.... #.... #..#. #.#.. ##... #.#.. #..#.',
  l: '.##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###.',
  m: '..... ..... ##.#. #.#.# #.#.# #.#.# #.#.#',
  n: '..... ..... #.##. ##..# #...# #...# #...#',
  o: '..... ..... .###. #...# #...# #...# .###.',
  p: '..... ..... ####. #...# #...# #...# ####. #.... #....',
  q: '..... ..... .#### #...# #...# #...# .#### ....# ....#',
  r: '..... ..... #.##. ##..# #.... #.... #....',
  s: '..... ..... .###. #.... .###. ....# ####.',
  t: '.#... .#... ###.. .#... .#... .#..# ..##.',
  u: '..... ..... #...# #...# #...# #..## .##.#',
  v: '..... ..... #...# #...# #...# .#.#. ..#..',
  w: '..... ..... #...# #...# #.#.# #.#.# .#.#.',
  x: '..... ..... #...# .#.#. ..#.. .#.#. #...#',
  y: '..... ..... #...# #...# #...# #...# .#### ....# .###.',
  z: '..... ..... ##### ...#. ..#.. .#... #####',
  '.': '..... ..... ..... ..... ..... .##.. .##..',
  ',': '..... ..... ..... ..... ..... .##.. .##.. ..#.. .#...',
  ':': '..... .##.. .##.. ..... .##.. .##.. .....',
  ';': '..... .##.. .##.. ..... .##.. .##.. ..#.. .#...',
  '-': '..... ..... ..... .###. ..... ..... .....',
  '−': '..... ..... ..... ##### ..... ..... .....',
  '–': '..... ..... ..... ##### ..... ..... .....',
  '—': '..... ..... ..... ##### ..... ..... .....',
  '+': '..... ..#.. ..#.. ##### ..#.. ..#.. .....',
  '/': '..... ....# ...#. ..#.. .#... #.... .....',
  '\\': '..... #.... .#... ..#.. ...#. ....# .....',
  '(': '...#. ..#.. .#... .#... .#... ..#.. ...#.',
  ')': '.#... ..#.. ...#. ...#. ...#. ..#.. .#...',
  '[': '.###. .#... .#... .#... .#... .#... .###.',
  ']': '.###. ...#. ...#. ...#. ...#. ...#. .###.',
  '=': '..... ..... ##### ..... ##### ..... .....',
  '<': '...#. ..#.. .#... #.... .#... ..#.. ...#.',
  '>': '.#... ..#.. ...#. ....# ...#. ..#.. .#...',
  '≥': '.#... ..#.. ...#. ..#.. .#... ..... #####',
  '≤': '...#. ..#.. .#... ..#.. ...#. ..... #####',
  '%': '##... ##..# ...#. ..#.. .#... #..## ...##',
  '_': '..... ..... ..... ..... ..... ..... #####',
  "'": '..#.. ..#.. .#... ..... ..... ..... .....',
  '"': '.#.#. .#.#. ..... ..... ..... ..... .....',
  '?': '.###. #...# ....# ...#. ..#.. ..... ..#..',
  '!': '..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..',
  '|': '..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#..',
  '#': '.#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.',
  '*': '..... ..#.. #.#.# .###. #.#.# ..#.. .....',
  '×': '..... #...# .#.#. ..#.. .#.#. #...# .....',
  '·': '..... ..... ..... .##.. .##.. ..... .....',
  '°': '.##.. #..#. .##.. ..... ..... ..... .....',
  '²': '##... ..#.. .#... ###.. ..... ..... .....',
  '³': '###.. .##.. ..#.. ##... ..... ..... .....',
  '∞': '..... ..... .#.#. #.#.# .#.#. ..... .....',
};

const UNKNOWN = '##### #...# #...# #...# #...# #...# #####';

/** Glyph cell: 5 columns plus 1 column spacing; 7 rows above the baseline (+2 descender rows). */
export const GLYPH_WIDTH = 5;
export const GLYPH_ADVANCE = 6;
export const GLYPH_HEIGHT = 7;

const glyphCache = new Map<string, boolean[][]>();

function glyph(ch: string): boolean[][] {
  let g = glyphCache.get(ch);
  if (!g) {
    const src = GLYPHS[ch] ?? UNKNOWN;
    g = src.split(' ').map((row) => Array.from(row, (c) => c === '#'));
    glyphCache.set(ch, g);
  }
  return g;
}

/** Width in pixels of `text` drawn at `scale` (no trailing spacing column). */
export function textWidth(text: string, scale = 1): number {
  const n = Array.from(text).length;
  return n === 0 ? 0 : (n * GLYPH_ADVANCE - 1) * scale;
}

export type Align = 'left' | 'center' | 'right';

// ---------------------------------------------------------------- canvas

export class Canvas {
  readonly width: number;
  readonly height: number;
  /** RGB, row-major, top row first. */
  readonly data: Uint8Array;

  constructor(width: number, height: number, background: Rgb = WHITE) {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
      throw new RangeError(`Canvas: invalid size ${width}×${height}`);
    }
    this.width = width;
    this.height = height;
    this.data = new Uint8Array(width * height * 3);
    this.fillRect(0, 0, width, height, background);
  }

  setPixel(x: number, y: number, c: Rgb): void {
    x = Math.round(x);
    y = Math.round(y);
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const i = (y * this.width + x) * 3;
    this.data[i] = c[0];
    this.data[i + 1] = c[1];
    this.data[i + 2] = c[2];
  }

  getPixel(x: number, y: number): Rgb {
    const i = (y * this.width + x) * 3;
    return [this.data[i], this.data[i + 1], this.data[i + 2]];
  }

  /** Fills [x, x + w) × [y, y + h), clipped. */
  fillRect(x: number, y: number, w: number, h: number, c: Rgb): void {
    const x0 = Math.max(0, Math.round(x));
    const y0 = Math.max(0, Math.round(y));
    const x1 = Math.min(this.width, Math.round(x + w));
    const y1 = Math.min(this.height, Math.round(y + h));
    for (let yy = y0; yy < y1; yy++) {
      for (let xx = x0; xx < x1; xx++) {
        const i = (yy * this.width + xx) * 3;
        this.data[i] = c[0];
        this.data[i + 1] = c[1];
        this.data[i + 2] = c[2];
      }
    }
  }

  /** Outline of [x, x + w) × [y, y + h), `t` pixels thick, drawn inside the rectangle. */
  strokeRect(x: number, y: number, w: number, h: number, c: Rgb, t = 1): void {
    this.fillRect(x, y, w, t, c);
    this.fillRect(x, y + h - t, w, t, c);
    this.fillRect(x, y, t, h, c);
    this.fillRect(x + w - t, y, t, h, c);
  }

  /**
   * Line from (x0, y0) to (x1, y1) (Bresenham on rounded end points), drawn with a square brush
   * `thickness` pixels wide. `dash` = [on, off] lengths in steps along the line.
   */
  line(x0: number, y0: number, x1: number, y1: number, c: Rgb, thickness = 1, dash?: readonly [number, number]): void {
    let x = Math.round(x0);
    let y = Math.round(y0);
    const xe = Math.round(x1);
    const ye = Math.round(y1);
    const dx = Math.abs(xe - x);
    const dy = -Math.abs(ye - y);
    const sx = x < xe ? 1 : -1;
    const sy = y < ye ? 1 : -1;
    let err = dx + dy;
    const lo = -Math.floor((thickness - 1) / 2);
    const period = dash ? dash[0] + dash[1] : 0;
    for (let step = 0; ; step++) {
      if (!dash || step % period < dash[0]) {
        if (thickness <= 1) this.setPixel(x, y, c);
        else this.fillRect(x + lo, y + lo, thickness, thickness, c);
      }
      if (x === xe && y === ye) break;
      const e2 = 2 * err;
      if (e2 >= dy) {
        err += dy;
        x += sx;
      }
      if (e2 <= dx) {
        err += dx;
        y += sy;
      }
    }
  }

  /** Connected line segments through `points`. */
  polyline(points: ReadonlyArray<readonly [number, number]>, c: Rgb, thickness = 1): void {
    for (let i = 1; i < points.length; i++) {
      const [a, b] = [points[i - 1], points[i]];
      this.line(a[0], a[1], b[0], b[1], c, thickness);
    }
  }

  /**
   * Draws `text` with its top-left corner (of the 7-row cap height) at (x, y), each font pixel a
   * scale×scale square; `align` places x at the left edge, centre or right edge of the text.
   * Returns the text width in pixels.
   */
  text(x: number, y: number, text: string, c: Rgb, scale = 1, align: Align = 'left'): number {
    const w = textWidth(text, scale);
    let cx = Math.round(align === 'left' ? x : align === 'center' ? x - w / 2 : x - w);
    const cy = Math.round(y);
    for (const ch of text) {
      const g = glyph(ch);
      for (let r = 0; r < g.length; r++) {
        for (let col = 0; col < GLYPH_WIDTH; col++) {
          if (g[r][col]) this.fillRect(cx + col * scale, cy + r * scale, scale, scale, c);
        }
      }
      cx += GLYPH_ADVANCE * scale;
    }
    return w;
  }

  /**
   * Text rotated 90° counter-clockwise (reading bottom to top), e.g. a y-axis title. (x, y) is
   * the centre of the text's extent along y and the left edge (the glyph tops) along x.
   */
  textVertical(x: number, y: number, text: string, c: Rgb, scale = 1): void {
    const w = textWidth(text, scale);
    let cy = Math.round(y + w / 2); // the first character starts at the bottom
    const cx = Math.round(x);
    for (const ch of text) {
      const g = glyph(ch);
      for (let r = 0; r < g.length; r++) {
        for (let col = 0; col < GLYPH_WIDTH; col++) {
          // glyph (col, r) -> canvas (x + r, y0 - col)
          if (g[r][col]) this.fillRect(cx + r * scale, cy - (col + 1) * scale, scale, scale, c);
        }
      }
      cy -= GLYPH_ADVANCE * scale;
    }
  }

  /**
   * Copies a w×h grayscale image (row-major, top row first) with its top-left corner at (x, y),
   * every source pixel becoming a scale×scale block (nearest neighbour).
   */
  drawGray(x: number, y: number, gray: Uint8Array, w: number, h: number, scale = 1): void {
    if (gray.length !== w * h) throw new RangeError(`drawGray: ${gray.length} pixels for ${w}×${h}`);
    for (let r = 0; r < h; r++) {
      for (let col = 0; col < w; col++) {
        const v = gray[r * w + col];
        this.fillRect(x + col * scale, y + r * scale, scale, scale, [v, v, v]);
      }
    }
  }

  toImage(): RasterImage {
    return { width: this.width, height: this.height, channels: 3, data: this.data };
  }
}

// ---------------------------------------------------------------- axes helpers

/**
 * Tick positions from `lo` to `hi` at a "nice" step (1, 2, 2.5 or 5 × 10^k) giving at most
 * `maxTicks` ticks. Values are rounded to the step's decimals so labels print cleanly.
 */
export function niceTicks(lo: number, hi: number, maxTicks: number): { step: number; ticks: number[]; decimals: number } {
  if (!(hi > lo) || !Number.isFinite(lo) || !Number.isFinite(hi)) return { step: 1, ticks: [lo], decimals: 0 };
  const raw = (hi - lo) / Math.max(1, maxTicks - 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  let step = 10 * mag;
  for (const m of [1, 2, 2.5, 5, 10]) {
    if (m * mag >= raw * (1 - 1e-9)) {
      step = m * mag;
      break;
    }
  }
  // Fewest decimals that print the step exactly (0.025 -> 3, 0.5 -> 1, 20 -> 0).
  let decimals = 0;
  while (decimals < 12 && Math.abs(step * 10 ** decimals - Math.round(step * 10 ** decimals)) > 1e-6) decimals++;
  const ticks: number[] = [];
  const first = Math.ceil(lo / step - 1e-9);
  for (let k = first; k * step <= hi + step * 1e-9; k++) ticks.push(Number((k * step).toFixed(decimals + 2)));
  return { step, ticks, decimals };
}
