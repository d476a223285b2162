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

/** TempFile's names: .<target>.tmp-<pid>-<12 hex digits>. */
const TEMP_NAME = /^\..+\.tmp-(\d+)-[0-9a-f]{12}$/;

/**
 * Removes the temporary files in `dir` that a killed process left (it never got to rename or
 * remove them; at box 128 a checkpoint's is 51 MiB): those whose process no longer runs on this
 * host. Returns how many were removed.
 */
export function removeStaleTempFiles(dir: string): number {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const m = TEMP_NAME.exec(name);
    if (!m || processRuns(Number(m[1]))) continue;
    try {
      fs.unlinkSync(path.join(dir, name));
      removed++;
    } catch {
      /* gone meanwhile, or not ours to remove: left as it is */
    }
  }
  return removed;
}

function processRuns(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A temporary file being written next to its target (same filesystem, so rename is atomic). */
class TempFile {
  readonly tmp: string;
  fd: number | null = null;
  private created = false;

  constructor(readonly target: string) {
    this.tmp = path.join(path.dirname(target), `.${path.basename(target)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  }

  /** Creates it ('x': never clobber a file we did not create) and writes every chunk. */
  write(chunks: Uint8Array[]): void {
    this.fd = fs.openSync(this.tmp, 'wx');
    this.created = true;
    // writeSync may write less than asked (and is limited to 2 GiB per call): loop.
    const maxChunk = 1 << 30;
    for (const bytes of chunks) {
      let done = 0;
      while (done < bytes.length) done += fs.writeSync(this.fd, bytes, done, Math.min(maxChunk, bytes.length - done));
    }
  }

  /** After the fsync: closes it and puts it in place of the target. */
  commit(): void {
    fs.closeSync(this.fd!);
    this.fd = null;
    fs.renameSync(this.tmp, this.target);
  }

  /** Removes what was created and gives the error to report; the target is left untouched. */
  fail(e: unknown): TomoError {
    if (this.fd !== null) {
      try {
        fs.closeSync(this.fd);
      } catch {
        /* already failing; keep the first error */
      }
    }
    if (this.created) {
      try {
        fs.unlinkSync(this.tmp);
      } catch {
        /* nothing more we can do */
      }
    }
    return new TomoError(`cannot write ${this.target}: ${fsReason(e)}`);
  }
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
  const f = new TempFile(target);
  try {
    f.write(chunks);
    fs.fsyncSync(f.fd!);
    f.commit();
  } catch (e) {
    throw f.fail(e);
  }
}

/**
 * writeFileAtomic whose fsync and rename happen later: the bytes are written before it returns (so
 * the caller may reuse its buffers at once), the temporary file is fsync'ed in libuv's thread pool
 * while the calling thread goes on computing, then renamed over the target when its callback runs.
 * The promise settles once the target is in place (or the temporary file is removed and a
 * TomoError given); until then the target still holds its previous content. A failure to create or
 * write the file is thrown at once. A thread that writes
 * several files this way (a finalisation thread) waits on the disk once instead of once per file.
 */
export function writeFileAtomicDeferred(target: string, data: Uint8Array[]): Promise<void> {
  const f = new TempFile(target);
  try {
    f.write(data);
  } catch (e) {
    throw f.fail(e);
  }
  return new Promise((resolve, reject) => {
    fs.fsync(f.fd!, (err) => {
      try {
        if (err) throw err;
        f.commit();
        resolve();
      } catch (e) {
        reject(f.fail(e));
      }
    });
  });
}
