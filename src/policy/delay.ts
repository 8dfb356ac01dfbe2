// The `delay` input: one term or several joined by `+`, each a fixed duration, a uniform
// range, or a form such as ramp(...). Reading is a small hand-written scanner so that every
// mistake gets a precise message instead of a regular expression's silence.
import { MAX_DURATION_MS, readDuration } from './duration.js';
import { EXAMPLES, FORMS, fixed, uniform, type DelayTerm, type FormArg, type SampleContext } from './delay-forms.js';
import { SyntaxProblem, readInput } from './syntax.js';

export type { SampleContext } from './delay-forms.js';

export interface DelayPolicy {
  /** Canonical text; parseDelay(text).text === text. */
  text: string;
  /** Delay in ms for a call at a time since the proxy started. */
  sample(ctx: SampleContext): number;
  /** True when every sample is 0 ms, so callers can skip the delay machinery. */
  isZero: boolean;
}

const FORM_NAMES = Object.keys(FORMS) as Array<keyof typeof FORMS>;
const FORM_LIST = 'ramp, normal, lognormal, spike or phases';

/** A word runs until whitespace, an operator, or `..` (so `100ms..2s` is two words). */
const WORD = /(?:[^\s+(),=.]|\.(?!\.))*/y;

class Scanner {
  pos = 0;

  constructor(readonly text: string) {}

  skipSpace(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos])) this.pos += 1;
  }

  at(token: string): boolean {
    return this.text.startsWith(token, this.pos);
  }

  atEnd(): boolean {
    return this.pos >= this.text.length;
  }

  word(): string {
    WORD.lastIndex = this.pos;
    const word = WORD.exec(this.text)?.[0] ?? '';
    this.pos += word.length;
    return word;
  }

  rest(): string {
    return this.text.slice(this.pos).trim();
  }
}

function isForm(name: string): name is keyof typeof FORMS {
  return (FORM_NAMES as string[]).includes(name);
}

function readSum(scan: Scanner): DelayTerm[] {
  const terms: DelayTerm[] = [];
  for (;;) {
    scan.skipSpace();
    if (scan.atEnd() || scan.at('+')) throw new SyntaxProblem('"+" needs a term on each side', EXAMPLES.sum);
    const start = scan.pos;
    terms.push(readTerm(scan));
    const written = scan.text.slice(start, scan.pos).trim();
    scan.skipSpace();
    if (scan.atEnd()) return terms;
    if (!scan.at('+')) throw new SyntaxProblem(`unexpected ${JSON.stringify(scan.rest())} after ${JSON.stringify(written)}`, EXAMPLES.sum);
    scan.pos += 1;
  }
}

function readTerm(scan: Scanner): DelayTerm {
  const start = scan.pos;
  const first = scan.word();
  scan.skipSpace();
  if (scan.at('..')) {
    scan.pos += 2;
    scan.skipSpace();
    const second = scan.word();
    const written = scan.text.slice(start, scan.pos).trim();
    if (first === '') throw new SyntaxProblem(`the range ${JSON.stringify(written)} needs a lower bound`, EXAMPLES.uniform);
    if (second === '') throw new SyntaxProblem(`the range ${JSON.stringify(written)} needs an upper bound`, EXAMPLES.uniform);
    return uniform(readDuration(first, EXAMPLES.uniform), readDuration(second, EXAMPLES.uniform));
  }
  if (first === '') throw new SyntaxProblem(`expected a duration at ${JSON.stringify(scan.rest())}`, EXAMPLES.fixed);
  if (scan.at('(')) {
    if (!isForm(first)) throw new SyntaxProblem(`unknown delay form ${JSON.stringify(`${first}(`)} (use ${FORM_LIST})`, EXAMPLES.ramp);
    return FORMS[first](readArgs(scan, first));
  }
  if (isForm(first)) throw new SyntaxProblem(`${first} needs its arguments in parentheses`, EXAMPLES[first]);
  return fixed(readDuration(first, EXAMPLES.fixed));
}

/** Reads `(key=value, ...)` after a form's name. */
function readArgs(scan: Scanner, form: keyof typeof FORMS): FormArg[] {
  const problem = (why: string) => new SyntaxProblem(why, EXAMPLES[form]);
  const args: FormArg[] = [];
  scan.pos += 1;
  scan.skipSpace();
  if (scan.at(')')) {
    scan.pos += 1;
    return args;
  }
  for (;;) {
    scan.skipSpace();
    const key = scan.word();
    scan.skipSpace();
    if (scan.atEnd()) throw problem(`${form}( is missing its closing ")"`);
    if (key === '' && (scan.at(',') || scan.at(')'))) throw problem(`${form} has an empty argument`);
    if (key !== '' && (scan.at(',') || scan.at(')'))) throw problem(`${form}'s argument ${JSON.stringify(key)} has no name`);
    if (key === '' || !scan.at('=')) throw problem(`unexpected ${JSON.stringify(scan.rest())} in ${form}(...)`);
    scan.pos += 1;
    scan.skipSpace();
    const value = scan.word();
    scan.skipSpace();
    if (value === '') {
      if (scan.atEnd() || scan.at(',') || scan.at(')')) throw problem(`${form}'s ${key}= has no value`);
      throw problem(`unexpected ${JSON.stringify(scan.rest())} in ${form}(...)`);
    }
    args.push({ key, value });
    if (scan.atEnd()) throw problem(`${form}( is missing its closing ")"`);
    if (scan.at(')')) {
      scan.pos += 1;
      return args;
    }
    if (!scan.at(',')) throw problem(`unexpected ${JSON.stringify(scan.rest())} in ${form}(...)`);
    scan.pos += 1;
  }
}

/** Reads the `delay` language; throws InputError naming `input` for anything malformed. */
export function parseDelay(value: string, input = 'delay'): DelayPolicy {
  return readInput(input, value, () => {
    if (value.trim() === '') throw new SyntaxProblem('the delay is empty', EXAMPLES.fixed);
    const terms = readSum(new Scanner(value));
    return {
      text: terms.map((term) => term.text).join(' + '),
      isZero: terms.every((term) => term.isZero),
      // Clamped so a long-tailed draw never overflows Node's timers.
      sample: (ctx) => Math.min(MAX_DURATION_MS, terms.reduce((total, term) => total + term.sample(ctx), 0)),
    };
  });
}
