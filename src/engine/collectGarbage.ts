/**
 * A full garbage collection on demand, for the few points where a run drops hundreds of MiB at
 * once (the end of the back-projection: the tilt-series buffer and the threads' accumulators; the
 * end of symmetrisation: the shared copies of the sums). V8 frees array buffers only when their
 * objects are collected, which, left to itself, it does late: the garbage then stays resident
 * through the finalisation, and a run measured 392–419 MiB against 323–326 MiB with one collection
 * after the back-projection (box 128, three finalisation threads). `--mem` plans count live
 * buffers, so this is what keeps them true.
 *
 * `gc` is exposed the way test runners do it (--expose-gc set at run time, the function taken
 * from a new context); where that is refused the collection is simply left to V8.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

let gc: (() => void) | null | undefined;

export function collectGarbage(): void {
  if (gc === undefined) {
    try {
      v8.setFlagsFromString('--expose-gc');
      gc = vm.runInNewContext('gc') as () => void;
    } catch {
      gc = null;
    }
  }
  gc?.();
}

const LARGE_VOLUME_BYTES = 64 * 2 ** 20;

/**
 * A volume of `bytes` in a shared memory (a WebAssembly memory of sums a finalisation thread
 * transformed in place) is freed only once every isolate that saw it has collected its objects,
 * which an idle thread may not do before the run ends. Above LARGE_VOLUME_BYTES each side
 * collects as soon as it lets go: measured on a resumed box-256 run (its checkpoint's sums in
 * such memories), peak RSS 797–805 MiB against 898–930 MiB; below, the collections would cost
 * more time (box 128: the finalisation 30–40 ms longer) than the memory they give back.
 */
export function collectGarbageAfter(bytes: number): void {
  if (bytes > LARGE_VOLUME_BYTES) collectGarbage();
}

