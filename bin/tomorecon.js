#!/usr/bin/env node
// Entry point installed as `tomorecon`; the TypeScript sources are compiled to dist/ by `npm ci` (prepare).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const mainJs = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(mainJs))) {
  process.stderr.write('tomorecon: dist/ is missing; run `npm ci` (or `npm run build`) in the tomorecon folder first\n');
  process.exit(1);
}
const { main, relionProgram } = await import(mainJs.href);
// Started through a link named relion_tomo_reconstruct_particle(_mpi): RELION's command line.
process.exitCode = await main(process.argv.slice(2), relionProgram(process.argv[1]));
