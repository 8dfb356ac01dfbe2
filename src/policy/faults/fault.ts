// The one interface every fault implements, like Toxiproxy's toxics: a fault reads its own
// arguments, writes them back canonically, and adds its effect to the connection being planned.
// Scopes (probability=, direction=, calls=) are read once for all faults in ../faults.ts.
import type { Direction, Pacing, TimedAction } from '../../proxy/types.js';
import { lanesOf, type DirectionScope } from '../options.js';
import { SyntaxProblem } from '../syntax.js';

/** Global call numbers `first..last`, both included. */
export interface CallRange {
  first: number;
  last: number;
}

export function inRange(range: CallRange, call: number): boolean {
  return call >= range.first && call <= range.last;
}

export interface FaultScope {
  /** Chance in percent that a connection gets the fault, drawn when it opens. */
  probability: number;
  /** The directions the fault acts on; null for faults on the whole connection. */
  direction: DirectionScope | null;
  /** Only these global call numbers; null for every call. */
  calls: CallRange | null;
}

/** What one direction of a connection gets from its faults. */
export interface LaneFaults {
  /** Calls whose chunks are held for ever; a null entry holds every chunk. */
  hang: Array<CallRange | null>;
  /** Pacing for the chunks of these calls (null: every chunk). */
  pacers: Array<{ calls: CallRange | null; pacing: Pacing }>;
  limitBytes: number | null;
  slowCloseMs: number;
}

/** What all faults of one connection add up to; the planner turns it into a ConnectionPlan. */
export interface ConnectionFaults {
  refuse: boolean;
  connectDelayMs: number;
  /** Timers from the connection's open. */
  timed: TimedAction[];
  /** Timers from the start of the first call in range on the connection. */
  callTimed: Array<{ calls: CallRange; action: TimedAction }>;
  lanes: Record<Direction, LaneFaults>;
}

export function noFaults(): ConnectionFaults {
  const lane = (): LaneFaults => ({ hang: [], pacers: [], limitBytes: null, slowCloseMs: 0 });
  return { refuse: false, connectDelayMs: 0, timed: [], callTimed: [], lanes: { up: lane(), down: lane() } };
}

/** The lanes a lane fault acts on. */
export function lanesFor(scope: FaultScope, conn: ConnectionFaults): LaneFaults[] {
  return lanesOf(scope.direction ?? 'both').map((dir) => conn.lanes[dir]);
}

/** A fault's own arguments, the scopes taken out. */
export interface FaultArgs {
  /** The positional value (`64KB/s` in `bandwidth 64KB/s`); '' when the fault takes none. */
  value: string;
  /** `key=value` arguments, checked against the fault's `options`. */
  named: ReadonlyMap<string, string>;
}

export interface FaultKind<Name extends string, Params> {
  name: Name;
  /** A valid line, for error messages. */
  example: string;
  /** What the positional value is (`a rate`), or null when the fault takes none. */
  positional: string | null;
  /** Names of its `key=value` arguments. */
  options: readonly string[];
  /**
   * With calls=: `connection` faults apply to a connection when the next call number at
   * accept time is in range; `call` faults get the range and apply it per call themselves.
   */
  scoping: 'connection' | 'call';
  /** Direction when the line names none; null for faults on the whole connection (no direction=). */
  defaultDirection: DirectionScope | null;
  /** Throws SyntaxProblem. */
  parse(args: FaultArgs): Params;
  /** Its own arguments in canonical form ('' for none). */
  format(params: Params): string;
  apply(params: Params, scope: FaultScope, conn: ConnectionFaults): void;
}

/** A `key=value` argument the fault cannot do without. */
export function requireNamed(args: FaultArgs, fault: string, key: string, what: string, example: string): string {
  const value = args.named.get(key);
  if (value === undefined) throw new SyntaxProblem(`${fault} needs ${key}=<${what}>`, example);
  return value;
}
