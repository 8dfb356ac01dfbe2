// The small inputs that go with the delay: what a draw applies to, which way, and the seed.
import type { Direction } from '../proxy/types.js';
import { MAX_SEED } from './rng.js';
import { SyntaxProblem, readInput } from './syntax.js';

/** `call`: one draw per request and per response; `chunk`: one per chunk; `connection`: one per connection. */
export type DelayPer = 'call' | 'chunk' | 'connection';
/** `upstream`: client to service (requests); `downstream`: service to client (responses). */
export type DirectionScope = 'upstream' | 'downstream' | 'both';

const DELAY_PER: readonly DelayPer[] = ['call', 'chunk', 'connection'];
const DIRECTIONS: readonly DirectionScope[] = ['upstream', 'downstream', 'both'];

export function parseDelayPer(input: string, value: string): DelayPer {
  const text = value.trim();
  return readInput(input, value, () => {
    const found = DELAY_PER.find((per) => per === text);
    if (!found) throw new SyntaxProblem('use call, chunk or connection', 'call');
    return found;
  });
}

/** Reads a direction; throws SyntaxProblem. */
export function readDirection(text: string, example: string): DirectionScope {
  const found = DIRECTIONS.find((dir) => dir === text);
  if (!found) throw new SyntaxProblem(`${JSON.stringify(text)} is not a direction (use upstream, downstream or both)`, example);
  return found;
}

export function parseDirection(input: string, value: string): DirectionScope {
  return readInput(input, value, () => readDirection(value.trim(), 'downstream'));
}

/** A seed: a whole number from 0 to 2^32-1. Callers pick `randomSeed()` when the input is empty. */
export function parseSeed(input: string, value: string): number {
  const text = value.trim();
  return readInput(input, value, () => {
    if (!/^\d+$/.test(text) || Number(text) > MAX_SEED) throw new SyntaxProblem(`a seed is a whole number from 0 to ${MAX_SEED}`, '42');
    return Number(text);
  });
}

/** The engine directions a scope covers. */
export function lanesOf(scope: DirectionScope): Direction[] {
  if (scope === 'upstream') return ['up'];
  if (scope === 'downstream') return ['down'];
  return ['up', 'down'];
}
