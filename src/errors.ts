import fs from 'node:fs';

/**
 * The one error type the project throws for anything a user can cause (bad file, missing label,
 * impossible option). The CLI prints its message alone, without a stack trace, and exits non-zero.
 * Anything else reaching the top level is a bug and is reported as such.
 */
export class TomoError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TomoError';
  }
}

export function isTomoError(e: unknown): e is TomoError {
  return e instanceof TomoError;
}

/**
 * The RELION pipeliner asked the job to stop (<prefix>RELION_JOB_ABORT_NOW, formats.md §7.6): the
 * CLI exits with status 2 and creates <prefix>RELION_JOB_EXIT_ABORTED.
 */
export class JobAborted extends TomoError {
  constructor(message: string) {
    super(message);
    this.name = 'JobAborted';
  }
}

/**
 * `<prefix>RELION_JOB_ABORT_NOW` when the pipeliner has asked a job run with --pipeline_control
 * `prefix` to stop (its GUI's Abort), else null (always null without a prefix).
 */
export function pipelineAbortFile(prefix: string): string | null {
  const file = `${prefix}RELION_JOB_ABORT_NOW`;
  return prefix && fs.existsSync(file) ? file : null;
}
