// Shared by every parser of the policy language: inner readers throw a SyntaxProblem that
// says what is wrong with one piece, and the public parse functions turn it into an
// InputError naming the input and the whole value the user wrote, so messages stay one line.
import { InputError } from '../errors.js';

export class SyntaxProblem extends Error {
  constructor(
    readonly why: string,
    readonly example?: string,
  ) {
    super(why);
    this.name = 'SyntaxProblem';
  }
}

/** Runs an inner reader and reports its SyntaxProblem as an InputError for `input` and `value`. */
export function readInput<T>(input: string, value: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof SyntaxProblem) throw new InputError(input, value, err.why, err.example);
    throw err;
  }
}

/** A count such as `every=10`: a whole number, at least `min`. */
export function readCount(text: string, what: string, min: number, example: string): number {
  if (!/^\d+$/.test(text)) throw new SyntaxProblem(`${what} must be a whole number, not ${JSON.stringify(text)}`, example);
  const n = Number(text);
  if (n < min) throw new SyntaxProblem(`${what} must be at least ${min}`, example);
  if (!Number.isSafeInteger(n)) throw new SyntaxProblem(`${what} is too large`, example);
  return n;
}
