import { describe, it, expect } from 'vitest';
import { TomoError } from '../src/errors.js';
describe('errors', () => {
  it('TomoError carries its message', () => {
    expect(new TomoError('x').message).toBe('x');
  });
});
