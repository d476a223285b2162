/**
 * STAR files in the dialect RELION reads and writes (spec formats.md §1).
 *
 * Deliberate differences from RELION, all in the lenient-but-safe direction:
 *  - CR+LF line endings are accepted (RELION rejects them in named reads);
 *  - a loop may end at a `data_`/`loop_` line without a blank line before it;
 *  - whole-line `#` comments between loop rows are skipped (RELION fails on them);
 *  - a row with fewer values than labels is always an error (RELION tolerates it for <= 2 labels).
 */
import fs from 'node:fs';
import { TomoError } from '../errors.js';
import { writeFileAtomic, fsReason } from './atomicWrite.js';

export interface StarBlock {
  /** Block name after `data_` (may be empty, may contain `/`). */
  name: string;
  kind: 'loop' | 'list';
  /** Labels without the leading `_`. */
  labels: string[];
  /** Values, unquoted. A list table has exactly one row. */
  rows: string[][];
  /** 1-based source line of each row (list table: line of the first label). */
  rowLines: number[];
  /** File path, for messages. */
  source: string;
}

/** For list tables parsed from text: the line of each label, so errors can point at it. */
const listLabelLines = new WeakMap<StarBlock, number[]>();

const isSpace = (c: string): boolean => c === ' ' || c === '\t' || c === '\r' || c === '\v' || c === '\f';

/**
 * Splits one line into values. A token starting with ' or " runs to the matching quote that is
 * followed by whitespace or the end of the line (so `"it's"` and `'say "hi"'` work); a token
 * starting with # (outside quotes) ends the line.
 */
function tokenize(line: string, where: () => string): string[] {
  const tokens: string[] = [];
  const n = line.length;
  let p = 0;
  for (;;) {
    while (p < n && isSpace(line[p])) p++;
    if (p >= n || line[p] === '#') break;
    const c = line[p];
    if (c === '"' || c === "'") {
      let q = p + 1;
      for (;;) {
        q = line.indexOf(c, q);
        if (q < 0) {
          throw new TomoError(`${where()}: unterminated quote: ${line.slice(p, p + 40)} has no closing ${c} followed by a space or end of line`);
        }
        if (q + 1 >= n || isSpace(line[q + 1])) break;
        q++;
      }
      tokens.push(line.slice(p + 1, q));
      p = q + 1;
    } else {
      let q = p;
      while (q < n && !isSpace(line[q])) q++;
      tokens.push(line.slice(p, q));
      p = q;
    }
  }
  return tokens;
}

/** `_label #3` -> `label` (text after `_` up to the first whitespace). */
function labelOf(trimmed: string): string {
  const m = /^_(\S*)/.exec(trimmed);
  return m ? m[1] : '';
}

/** Parses every data block of a STAR text, in file order. */
export function parseStar(text: string, source: string): StarBlock[] {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // UTF-8 byte-order mark
  const lines = text.split('\n');
  const n = lines.length;
  const trimmed = (i: number): string => lines[i].trim();
  const blocks: StarBlock[] = [];
  let i = 0;

  while (i < n) {
    const k = trimmed(i).indexOf('data_');
    if (k < 0) {
      i++; // text outside blocks, comments, stray lines after a table: ignored like RELION does
      continue;
    }
    const block: StarBlock = { name: trimmed(i).slice(k + 5).trim(), kind: 'loop', labels: [], rows: [], rowLines: [], source };
    const blockName = `data_${block.name}`;
    blocks.push(block);
    i++;

    // Skip to the table start. A block with no table at all stays an empty loop.
    let start = '';
    for (; i < n; i++) {
      start = trimmed(i);
      if (start.startsWith('loop_') || start.startsWith('_') || start.includes('data_')) break;
    }
    if (i >= n || !(start.startsWith('loop_') || start.startsWith('_'))) continue;

    const seen = new Set<string>();
    const addLabel = (label: string, line: number): void => {
      if (label === '') throw new TomoError(`${source} line ${line}: block ${blockName}: empty label`);
      if (seen.has(label)) throw new TomoError(`${source} line ${line}: block ${blockName}: duplicate label _${label}`);
      seen.add(label);
      block.labels.push(label);
    };

    if (start.startsWith('loop_')) {
      i++;
      // Header: labels, with blank and comment lines allowed in between.
      let blankAfterLabels = false;
      for (; i < n; i++) {
        const t = trimmed(i);
        if (t === '' || t[0] === '#' || t[0] === ';') {
          if (t === '' && block.labels.length > 0) blankAfterLabels = true;
          continue;
        }
        if (t[0] !== '_') break;
        addLabel(labelOf(t), i + 1);
      }
      // Rows: until a blank line (as RELION), EOF, or the next block or table where the blank line
      // is missing. A row may begin with a value such as data_raw/TS_01_001.eer, so with several
      // labels a data_/loop_ line is a header only when it is one token, or when it follows the
      // labels after a blank line (an empty table); a one-label loop cannot tell, so there it is.
      for (; i < n; i++) {
        const t = trimmed(i);
        if (t === '') break;
        if (t[0] === '#') continue;
        const lineNo = i + 1;
        const header = t.startsWith('data_') || t.startsWith('loop_');
        if (header && (block.labels.length <= 1 || (block.rows.length === 0 && blankAfterLabels))) break;
        if (block.labels.length === 0) {
          throw new TomoError(`${source} line ${lineNo}: block ${blockName}: loop_ has no _labels before its first row`);
        }
        const values = tokenize(lines[i], () => `${source} line ${lineNo}: block ${blockName}`);
        if (header && values.length === 1) break;
        if (values.length !== block.labels.length) {
          throw new TomoError(
            `${source} line ${lineNo}: block ${blockName}: expected ${block.labels.length} values (one per label), found ${values.length}`,
          );
        }
        block.rows.push(values);
        block.rowLines.push(lineNo);
      }
    } else {
      block.kind = 'list';
      const row: string[] = [];
      const labelLines: number[] = [];
      for (; i < n; i++) {
        const t = trimmed(i);
        if (t === '' || t[0] === '#' || t[0] === ';') continue;
        if (t.startsWith('data_') || t.startsWith('loop_')) break;
        const lineNo = i + 1;
        if (t[0] !== '_') {
          throw new TomoError(`${source} line ${lineNo}: block ${blockName}: expected '_label value', found '${t.slice(0, 60)}'`);
        }
        const label = labelOf(t);
        addLabel(label, lineNo);
        const values = tokenize(t.slice(label.length + 1), () => `${source} line ${lineNo}: block ${blockName}`);
        if (values.length !== 1) {
          throw new TomoError(
            `${source} line ${lineNo}: block ${blockName}: _${label} needs exactly one value, found ${values.length}`,
          );
        }
        row.push(values[0]);
        labelLines.push(lineNo);
      }
      block.rows.push(row);
      block.rowLines.push(labelLines[0]);
      listLabelLines.set(block, labelLines);
    }
  }
  return blocks;
}

/** Reads and parses a STAR file; a missing or unreadable file is a TomoError. */
export function readStar(path: string): StarBlock[] {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (e) {
    throw new TomoError(`cannot read STAR file ${path}: ${fsReason(e)}`);
  }
  return parseStar(text, path);
}

/** The first block named exactly `name`; `''` means the first block of the file. */
export function findBlock(blocks: StarBlock[], name: string): StarBlock | undefined {
  return name === '' ? blocks[0] : blocks.find((b) => b.name === name);
}

/**
 * Quotes a value when reading it back unquoted would change it: empty, whitespace inside, or a
 * start that the reader treats specially (quote, comment, label, block/loop keyword).
 */
function quoteValue(v: string, where: string): string {
  if (v !== '' && !/[\s]/.test(v) && !/^(['"#;_]|data_|loop_)/.test(v)) return v;
  if (/[\n\r]/.test(v)) throw new TomoError(`${where}: value contains a line break, which STAR cannot represent`);
  // The reader ends a quoted value at the quote char followed by whitespace, so pick a quote char
  // that never occurs followed by whitespace inside the value.
  for (const q of ['"', "'"]) {
    if (!new RegExp(`${q}\\s`).test(v)) return q + v + q;
  }
  throw new TomoError(`${where}: value ${JSON.stringify(v)} cannot be quoted in STAR`);
}

/** RELION-style STAR text (LF line endings). parseStar(formatStar(x)) reproduces x. */
export function formatStar(blocks: StarBlock[]): string {
  const out: string[] = [];
  for (const b of blocks) {
    const where = `data_${b.name}`;
    if (/[\r\n]/.test(b.name)) throw new TomoError(`block name ${JSON.stringify(b.name)} contains a line break`);
    for (const l of b.labels) {
      if (l === '' || /\s/.test(l)) throw new TomoError(`${where}: invalid label ${JSON.stringify(l)}`);
    }
    out.push(`\n# version 50001\n\ndata_${b.name}\n\n`);
    if (b.kind === 'list') {
      const row = b.rows[0] ?? [];
      b.labels.forEach((l, j) => out.push(`_${l} ${quoteValue(row[j] ?? '', where)}\n`));
    } else {
      out.push('loop_ \n');
      b.labels.forEach((l, j) => out.push(`_${l} #${j + 1} \n`));
      for (const row of b.rows) out.push(row.map((v) => quoteValue(v, where)).join(' ') + '\n');
    }
    out.push('\n');
  }
  return out.join('');
}

/** Writes blocks as a STAR file, atomically. */
export function writeStarFile(path: string, blocks: StarBlock[]): void {
  writeFileAtomic(path, formatStar(blocks));
}

/** Decimal number as C++ stream extraction accepts it (no hex, inf or nan; no trailing junk). */
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** Typed, error-reporting access to one table. */
export class StarTable {
  readonly block: StarBlock;
  private readonly index = new Map<string, number>();

  constructor(block: StarBlock) {
    this.block = block;
    block.labels.forEach((l, j) => this.index.set(l, j));
  }

  get rowCount(): number {
    return this.block.rows.length;
  }

  has(label: string): boolean {
    return this.index.has(label);
  }

  private column(label: string): number {
    const j = this.index.get(label);
    if (j === undefined) {
      throw new TomoError(`${this.block.source}: block data_${this.block.name} has no column _${label}`);
    }
    return j;
  }

  private cell(row: number, j: number): string {
    const r = this.block.rows[row];
    if (r === undefined) throw new RangeError(`row ${row} out of range (0..${this.rowCount - 1}) in data_${this.block.name}`);
    return r[j];
  }

  /** Where a cell came from, for messages: `file line N: block data_x, _label`. */
  private where(row: number, j: number): string {
    const b = this.block;
    const line = b.kind === 'list' ? (listLabelLines.get(b)?.[j] ?? b.rowLines[0]) : b.rowLines[row];
    return `${b.source}${line !== undefined ? ` line ${line}` : ''}: block data_${b.name}, _${b.labels[j]}`;
  }

  str(row: number, label: string): string {
    return this.cell(row, this.column(label));
  }

  /** A number; `fallback` is used only when the column is absent, never for a bad value. */
  num(row: number, label: string, fallback?: number): number {
    if (fallback !== undefined && !this.has(label)) return fallback;
    const j = this.column(label);
    const v = this.cell(row, j);
    if (!NUMBER.test(v)) throw new TomoError(`${this.where(row, j)}: expected a number, found '${v}'`);
    return Number(v);
  }

  /** An integer; like RELION, `1.000` is accepted but `1.5` is not. */
  int(row: number, label: string, fallback?: number): number {
    if (fallback !== undefined && !this.has(label)) return fallback;
    const j = this.column(label);
    const v = this.cell(row, j);
    const x = NUMBER.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(x)) throw new TomoError(`${this.where(row, j)}: expected an integer, found '${v}'`);
    return x === 0 ? 0 : x; // no -0
  }

  /** A vector written as `[0.08,-0.99,0.01,3618.3]` or `0.08,-0.99,0.01,3618.3`; `[]` is empty. */
  vec(row: number, label: string): number[] {
    const j = this.column(label);
    const v = this.cell(row, j);
    let body = v.trim();
    if (body.startsWith('[') && body.endsWith(']')) body = body.slice(1, -1);
    if (body.trim() === '') return [];
    return body.split(',').map((piece) => {
      const s = piece.trim();
      if (!NUMBER.test(s)) {
        throw new TomoError(`${this.where(row, j)}: expected a list of numbers like [1,2,3], found '${v}' (bad element '${s}')`);
      }
      return Number(s);
    });
  }
}
