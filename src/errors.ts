// One error type for bad user input, so every entry point can print it as one line
// (no stack trace) and the message always names the input, the value and a valid example.

export class InputError extends Error {
  constructor(
    readonly input: string,
    readonly value: string,
    readonly why: string,
    readonly example?: string,
  ) {
    super(`${input}: cannot read ${JSON.stringify(value)}: ${why}${example ? `, e.g. ${example}` : ''}`);
    this.name = 'InputError';
  }
}

/** The message of any thrown value, without a stack. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
