// One reading of the user's settings for every entry point: the action's inputs and the
// CLI's flags carry the same names and meet the same checks, so an error reads the same
// wherever the value came from.
import { InputError } from './errors.js';
import { parseDelay, type DelayPolicy } from './policy/delay.js';
import { parseDuration } from './policy/duration.js';
import { parseFaults, type FaultSpec } from './policy/faults.js';
import { parseDelayPer, parseDirection, parseSeed, type DelayPer, type DirectionScope } from './policy/options.js';
import { randomSeed } from './policy/rng.js';
import type { Target } from './proxy/types.js';
import { parseMaxRegression } from './record/gates.js';

/** Raw values by input name (`max-wait`, `log-payload`, ...); missing or empty means the default. */
export type RawSettings = Partial<Record<SettingName, string>>;

/** Every setting, by the name of its action input (and CLI flag), in action.yml's order. */
export const SETTING_NAMES = [
  'target',
  'port',
  'listen-address',
  'delay',
  'delay-per',
  'direction',
  'faults',
  'seed',
  'max-wait',
  'baseline',
  'max-regression',
  'log-payload',
  'pcap',
  'name',
  'summary',
  'run',
] as const;

export type SettingName = (typeof SETTING_NAMES)[number];

export interface Settings {
  target: Target;
  listenHost: string;
  listenPort: number;
  delay: DelayPolicy;
  delayPer: DelayPer;
  direction: DirectionScope;
  faults: FaultSpec[];
  seed: number;
  /** True when the seed was picked here (no `seed` input), so reports say how to replay it. */
  seedPicked: boolean;
  maxWaitMs: number | null;
  baseline: string | null;
  maxRegressionPct: number;
  logPayload: boolean;
  pcap: boolean;
  name: string;
  summary: boolean;
  run: string;
}

/** Services a local target's port most likely is, so `localhost:5432` reports as `postgres`. */
const WELL_KNOWN_PORTS: Record<number, string> = {
  389: 'ldap',
  636: 'ldaps',
  1433: 'mssql',
  3306: 'mysql',
  5432: 'postgres',
  5672: 'rabbitmq',
  6379: 'redis',
  9200: 'elasticsearch',
  11211: 'memcached',
  27017: 'mongodb',
};

export function parseSettings(raw: RawSettings): Settings {
  const get = (name: SettingName): string => (raw[name] ?? '').trim();
  const target = parseTarget('target', get('target'));
  const seedText = get('seed');
  const maxWait = get('max-wait');
  return {
    target,
    listenHost: parseListenAddress('listen-address', get('listen-address') || '127.0.0.1'),
    listenPort: parsePort('port', get('port') || '0', true),
    delay: parseDelay(get('delay') || '0ms', 'delay'),
    delayPer: parseDelayPer('delay-per', get('delay-per') || 'call'),
    direction: parseDirection('direction', get('direction') || 'upstream'),
    faults: parseFaults(raw.faults ?? '', 'faults'),
    seed: seedText ? parseSeed('seed', seedText) : randomSeed(),
    seedPicked: !seedText,
    maxWaitMs: maxWait ? parseDuration('max-wait', maxWait) : null,
    baseline: get('baseline') || null,
    maxRegressionPct: parseMaxRegression('max-regression', get('max-regression')),
    logPayload: parseBoolean('log-payload', get('log-payload') || 'false'),
    pcap: parseBoolean('pcap', get('pcap') || 'false'),
    name: parseName('name', get('name') || defaultName(target)),
    summary: parseBoolean('summary', get('summary') || 'true'),
    run: raw.run?.trim() ?? '',
  };
}

/** `host:port`, `[v6]:port`. */
export function parseTarget(input: string, value: string): Target {
  const example = 'localhost:5432';
  if (!value) throw new InputError(input, value, 'a target is required as host:port', example);
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(value);
  const plain = /^([^:\s[\]]+):(\d+)$/.exec(value);
  const match = bracketed ?? plain;
  if (!match) throw new InputError(input, value, 'expected host:port (IPv6 as [::1]:port)', example);
  return { host: match[1], port: parsePortNumber(input, value, match[2], false, example) };
}

export function parsePort(input: string, value: string, allowZero: boolean): number {
  if (!/^\d+$/.test(value)) throw new InputError(input, value, 'a port is a whole number from 0 to 65535 (0 picks a free one)', '0');
  return parsePortNumber(input, value, value, allowZero, '0');
}

function parsePortNumber(input: string, value: string, digits: string, allowZero: boolean, example: string): number {
  const port = Number(digits);
  if (!Number.isInteger(port) || port > 65535 || (!allowZero && port === 0)) {
    throw new InputError(input, value, `port ${digits} is out of range (${allowZero ? 0 : 1}-65535)`, example);
  }
  return port;
}

function parseListenAddress(input: string, value: string): string {
  // Brackets are how users write IPv6 elsewhere; node's listen() wants the bare address.
  const host = value.replace(/^\[(.*)\]$/, '$1');
  if (/\s|\//.test(host)) throw new InputError(input, value, 'expected an IP address or host name', '127.0.0.1');
  return host;
}

export function parseBoolean(input: string, value: string): boolean {
  // The same words the runner's core.getBooleanInput accepts.
  if (['true', 'True', 'TRUE'].includes(value)) return true;
  if (['false', 'False', 'FALSE'].includes(value)) return false;
  throw new InputError(input, value, 'expected true or false', 'true');
}

function parseName(input: string, value: string): string {
  if (value.length > 100 || /[\r\n]/.test(value)) throw new InputError(input, value, 'a name is one line of at most 100 characters', 'postgres');
  return value;
}

/** `postgres` for `postgres:5432`; a local target is named after its well-known port. */
export function defaultName(target: Target): string {
  const local = /^(localhost|127\.\d+\.\d+\.\d+|::1|0\.0\.0\.0)$/.test(target.host);
  if (!local) return target.host;
  return WELL_KNOWN_PORTS[target.port] ?? `port-${target.port}`;
}

/** `host:port`, bracketing IPv6 hosts. */
export function formatAddress(target: Target): string {
  return target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
}

/** A file-name-safe form of a name. */
export function fileSafe(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 60) || 'proxy';
}
