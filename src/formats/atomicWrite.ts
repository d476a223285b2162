import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { TomoError } from '../errors.js';

/**
 * Human-readable reason for a failed fs call, without the path Node appends to its messages
 * (which would be the temporary file's name and only confuse the user).
 * `ENOENT: no such file or directory, open '/x/.y.tmp-1-ab'` -> `no such file or directory (ENOENT)`.
 */
export function fsReason(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const m = /^([A-Z][A-Z0-9_]+): ([^,]+)/.exec(msg);
  return m ? `${m[2]} (${m[1]})` : msg;
}

/**
 * Writes `data` to `target` so that readers never see a partial file: the bytes go to a
 * temporary file in the same directory (same filesystem, so rename is atomic), are fsync'ed,
 * and the temporary file is then renamed over the target. On any failure the temporary file is
 * removed and an existing target is left untouched.
 */
export function writeFileAtomic(target: string, data: Uint8Array | string | Uint8Array[]): void {
  // Several chunks are written one after the other, so large outputs need no concatenated copy.
  const chunks = Array.isArray(data) ? data : [typeof data === 'string' ? Buffer.from(data, 'utf8') : data];
  const dir = path.dirname(target);
  const tmp = path.join(dir, `.${path.basename(target)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  let fd: number | null = null;
  let created = false;
  try {
    fd = fs.openSync(tmp, 'wx'); // 'x': never clobber a file we did not create
    created = true;
    // writeSync may write less than asked (and is limited to 2 GiB per call): loop.
    const maxChunk = 1 << 30;
    for (const bytes of chunks) {
      let done = 0;
      while (done < bytes.length) {
        done += fs.writeSync(fd, bytes, done, Math.min(maxChunk, bytes.length - done));
      }
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = null;
    fs.renameSync(tmp, target);
  } catch (e) {
    if (fd !== null) {
      try {
        fs.closeSync(fd);
      } catch {
        /* already failing; keep the first error */
      }
    }
    if (created) {
      try {
        fs.unlinkSync(tmp);
      } catch {
        /* nothing more we can do */
      }
    }
    throw new TomoError(`cannot write ${target}: ${fsReason(e)}`);
  }
}
