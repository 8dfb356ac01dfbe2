// The `faults` input: one fault per line, a name, its arguments, and optional scopes
// (probability=, direction=, calls=). The faults themselves live in ./faults/, one per file.
import { bandwidth } from './faults/bandwidth.js';
import { close } from './faults/close.js';
import { connectDelay } from './faults/connect-delay.js';
import type { CallRange, FaultKind, FaultScope } from './faults/fault.js';
import { hang } from './faults/hang.js';
import { limitData } from './faults/limit-data.js';
import { refuse } from './faults/refuse.js';
import { reset } from './faults/reset.js';
import { slice } from './faults/slice.js';
import { slowClose } from './faults/slow-close.js';
import { readDirection } from './options.js';
import { SyntaxProblem, readInput } from './syntax.js';

const KINDS = {
  'connect-delay': connectDelay,
  hang,
  reset,
  close,
  refuse,
  bandwidth,
  'slow-close': slowClose,
  slice,
  'limit-data': limitData,
};

type Kinds = typeof KINDS;
export type FaultName = keyof Kinds;
type ParamsOf<Kind> = Kind extends FaultKind<string, infer Params> ? Params : never;

/** One parsed fault line. */
export type FaultSpec = { [Name in FaultName]: { name: Name; params: ParamsOf<Kinds[Name]>; scope: FaultScope } }[FaultName];

const FAULT_LIST = 'connect-delay, hang, reset, close, refuse, bandwidth, slow-close, slice or limit-data';

function isFaultName(name: string): name is FaultName {
  return Object.hasOwn(KINDS, name);
}

export function faultKind(name: FaultName): FaultKind<string, unknown> {
  return KINDS[name];
}

function readProbability(text: string, example: string): number {
  const match = /^(-?\d+(?:\.\d+)?)(%?)$/.exec(text);
  if (!match) throw new SyntaxProblem(`probability must be a percentage, not ${JSON.stringify(text)}`, example);
  if (match[2] === '') throw new SyntaxProblem(`probability=${text} needs a % sign`, example);
  const percent = Number(match[1]);
  if (percent < 0 || percent > 100) throw new SyntaxProblem(`probability must be between 0% and 100%, not ${text}`, example);
  return percent;
}

function readCalls(text: string, example: string): CallRange {
  const match = /^(\d+)(?:\.\.(\d+))?$/.exec(text);
  if (!match) throw new SyntaxProblem(`calls must be a call number or a range such as 10..20, not ${JSON.stringify(text)}`, example);
  const first = Number(match[1]);
  const last = match[2] === undefined ? first : Number(match[2]);
  if (first < 1) throw new SyntaxProblem('calls start at 1', example);
  if (last < first) throw new SyntaxProblem(`calls=${text} goes down (write the smaller number first)`, example);
  return { first, last };
}

function readFault(line: string): FaultSpec {
  const trimmed = line.trim();
  if (trimmed === '') throw new SyntaxProblem('the fault line is empty', 'bandwidth 64KB/s');
  const name = /^[^\s=]*/.exec(trimmed)?.[0] ?? '';
  if (name === '') throw new SyntaxProblem('a fault line starts with the name of a fault', 'bandwidth 64KB/s');
  // `key = value` and `10 .. 20` are accepted, then words are split on whitespace.
  const rest = trimmed.slice(name.length).trim().replace(/\s*=\s*/g, '=').replace(/\s*\.\.\s*/g, '..');
  const words = rest === '' ? [] : rest.split(/\s+/);
  if (!isFaultName(name)) throw new SyntaxProblem(`unknown fault ${JSON.stringify(name)} (use ${FAULT_LIST})`, 'bandwidth 64KB/s');
  const kind = faultKind(name);
  const problem = (why: string, example = kind.example) => new SyntaxProblem(why, example);
  const scopeNames = kind.defaultDirection === null ? ['probability', 'calls'] : ['direction', 'probability', 'calls'];
  const allowed = [...kind.options, ...scopeNames];

  const positional: string[] = [];
  const named = new Map<string, string>();
  for (const word of words) {
    const eq = word.indexOf('=');
    if (eq === -1) {
      positional.push(word);
      continue;
    }
    const key = word.slice(0, eq);
    const value = word.slice(eq + 1);
    if (key === '') throw problem(`${JSON.stringify(word)} needs a name before "="`);
    if (!allowed.includes(key)) {
      if (key === 'direction') throw problem(`${name} acts on the whole connection and takes no direction=`);
      throw problem(`${name} has no argument ${JSON.stringify(key)} (it takes ${allowed.join(', ')})`);
    }
    if (named.has(key)) throw problem(`${name} has ${key} twice`);
    if (value === '') throw problem(`${name}'s ${key}= has no value`);
    named.set(key, value);
  }
  if (kind.positional === null && positional.length > 0) throw problem(`${name} takes no value, not ${JSON.stringify(positional[0])}`);
  if (kind.positional !== null && positional.length === 0) throw problem(`${name} needs ${kind.positional}`);
  if (positional.length > 1) throw problem(`unexpected ${JSON.stringify(positional[1])} after ${JSON.stringify(`${name} ${positional[0]}`)}`);

  const probabilityText = named.get('probability');
  const directionText = named.get('direction');
  const callsText = named.get('calls');
  const scope: FaultScope = {
    probability: probabilityText === undefined ? 100 : readProbability(probabilityText, `${kind.example} probability=25%`),
    direction: directionText === undefined ? kind.defaultDirection : readDirection(directionText, `${kind.example} direction=downstream`),
    calls: callsText === undefined ? null : readCalls(callsText, `${kind.example} calls=10..20`),
  };
  const params = kind.parse({ value: positional[0] ?? '', named });
  return { name, params, scope } as FaultSpec;
}

/** One fault line; throws InputError naming `input`. */
export function parseFault(line: string, input = 'faults'): FaultSpec {
  return readInput(input, line.trim(), () => readFault(line));
}

/** Fault lines (a multi-line text or its lines); blank lines and `#` comments are skipped. */
export function parseFaults(text: string | string[], input = 'faults'): FaultSpec[] {
  const lines = typeof text === 'string' ? text.split(/\r?\n/) : text.flatMap((entry) => entry.split(/\r?\n/));
  return lines.flatMap((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') return [];
    return [readInput(`${input} line ${i + 1}`, raw.trim(), () => readFault(line))];
  });
}

/** The canonical line: arguments, then scopes that differ from their defaults. */
export function formatFault(spec: FaultSpec): string {
  const kind = faultKind(spec.name);
  const { probability, direction, calls } = spec.scope;
  const parts: string[] = [spec.name, kind.format(spec.params)];
  if (direction !== kind.defaultDirection) parts.push(`direction=${direction}`);
  if (calls) parts.push(`calls=${calls.first === calls.last ? calls.first : `${calls.first}..${calls.last}`}`);
  if (probability !== 100) parts.push(`probability=${probability}%`);
  return parts.filter((part) => part !== '').join(' ');
}
