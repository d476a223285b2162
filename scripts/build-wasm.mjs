#!/usr/bin/env node
/**
 * Compiles assembly/backproject.ts (which also exports the FFT kernels of assembly/fft.ts) with
 * AssemblyScript and writes the module's bytes, base64,
 * into src/recon/backprojectWasm.ts (checked in, so that the library needs no compiler at run
 * time and tests run from the TypeScript sources; test/wasm.test.ts checks it is up to date).
 *   node scripts/build-wasm.mjs          write the file
 *   node scripts/build-wasm.mjs --print  print the base64 only
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// Shared memory imported from the host, of any size up to 4 GiB; no runtime, no checks.
export const ASC_FLAGS = ['-O3', '--runtime', 'stub', '--noAssert', '--enable', 'threads', '--enable', 'simd', '--importMemory', '--sharedMemory', '--initialMemory', '1', '--maximumMemory', '65536'];

export function compileBackproject() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tomorecon-asc-'));
  try {
    const out = path.join(dir, 'backproject.wasm');
    execFileSync(process.execPath, [path.join(ROOT, 'node_modules/assemblyscript/bin/asc.js'), path.join(ROOT, 'assembly/backproject.ts'), ...ASC_FLAGS, '-o', out], { stdio: 'inherit' });
    return fs.readFileSync(out).toString('base64');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const b64 = compileBackproject();
  if (process.argv.includes('--print')) {
    console.log(b64);
  } else {
    const file = path.join(ROOT, 'src/recon/backprojectWasm.ts');
    fs.writeFileSync(
      file,
      `/**\n * The WebAssembly module of assembly/backproject.ts (base64), written by \`npm run build:wasm\`;\n * do not edit. test/wasm.test.ts checks that it matches the source.\n */\nexport const BACKPROJECT_WASM_BASE64 =\n  '${b64}';\n`,
    );
    console.log(`wrote ${path.relative(ROOT, file)} (${Buffer.from(b64, 'base64').length} bytes of WebAssembly)`);
  }
}
