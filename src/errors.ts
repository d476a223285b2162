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
