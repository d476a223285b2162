/**
 * The commands other than reconstruct. Each is a small module; this list wires them into the CLI.
 */
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { demoCommand } from './demoCommand.js';
import { fscCommand } from './fscCommand.js';
import { simulateCommand } from './simulateCommand.js';

export interface CommandModule {
  name: string;
  describe: string;
  builder: (y: Argv) => Argv;
  handler: (args: ArgumentsCamelCase) => Promise<void>;
}

export const COMMANDS: CommandModule[] = [simulateCommand, fscCommand, demoCommand];
