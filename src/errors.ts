// One error type for bad user input, so every entry point can print it as one line
// (no stack trace) and the message always names the input, the value and a valid example.

/** An error whose message is already the whole one-line story for the user: print it as it is. */
export class ReportedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReportedError';
  }
}

export class InputError extends ReportedError {
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
