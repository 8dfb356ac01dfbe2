// The command line, read with node:util's strict parseArgs. The proxy's flags are the action's
// inputs under the same names, so they go through the same parseSettings and fail the same way.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { parsePort, type RawSettings } from '../settings.js';

/** A command line that cannot be read at all (unknown flag, missing value): exit 2 with a pointer to --help. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Files the user named; the rest get defaults. */
export interface FileFlags {
  statsFile?: string;
  logFile?: string;
  pcapFile?: string;
}

export interface RunArgs {
  raw: RawSettings;
  files: FileFlags;
  /** Null: no control API. */
  controlPort: number | null;
}

export type Command =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'demo' }
  | { kind: 'ctl'; args: CtlArgs }
  | { kind: 'run'; args: RunArgs };

export interface CtlArgs {
  command: string;
  operands: string[];
  url: string | undefined;
  token: string | undefined;
}

const RUN_OPTIONS = {
  target: { type: 'string' },
  port: { type: 'string' },
  'listen-address': { type: 'string' },
  delay: { type: 'string' },
  'delay-per': { type: 'string' },
  direction: { type: 'string' },
  fault: { type: 'string', multiple: true },
  seed: { type: 'string' },
  'max-wait': { type: 'string' },
  baseline: { type: 'string' },
  'max-regression': { type: 'string' },
  name: { type: 'string' },
  'log-payload': { type: 'boolean' },
  pcap: { type: 'boolean' },
  'stats-file': { type: 'string' },
  'log-file': { type: 'string' },
  'pcap-file': { type: 'string' },
  'control-port': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
} as const satisfies ParseArgsConfig['options'];

/** Flags whose value is passed to parseSettings under the same name. */
const SETTING_FLAGS = [
  'target',
  'port',
  'listen-address',
  'delay',
  'delay-per',
  'direction',
  'seed',
  'max-wait',
  'baseline',
  'max-regression',
  'name',
] as const;

const CTL_OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

export function parseCommandLine(argv: string[]): Command {
  const [first, ...rest] = argv;
  if (first === 'demo') {
    const { values } = strictParse({ args: rest, options: { help: { type: 'boolean', short: 'h' } } });
    return values.help ? { kind: 'help' } : { kind: 'demo' };
  }
  if (first === 'ctl') return parseCtl(rest);
  if (first === 'help') return { kind: 'help' };
  if (first !== undefined && !first.startsWith('-')) {
    throw new UsageError(`unknown command '${first}' (the commands are ctl and demo, the proxy itself takes --target)`);
  }
  const { values } = strictParse({ args: argv, options: RUN_OPTIONS });
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };
  const raw: RawSettings = {};
  for (const flag of SETTING_FLAGS) raw[flag] = values[flag];
  raw.faults = (values.fault ?? []).join('\n');
  if (values['log-payload']) raw['log-payload'] = 'true';
  if (values.pcap || values['pcap-file']) raw.pcap = 'true';
  const controlPort = values['control-port'];
  return {
    kind: 'run',
    args: {
      raw,
      files: { statsFile: values['stats-file'], logFile: values['log-file'], pcapFile: values['pcap-file'] },
      controlPort: controlPort === undefined ? null : parsePort('control-port', controlPort, true),
    },
  };
}

function parseCtl(argv: string[]): Command {
  const { values, positionals } = strictParse({ args: argv, options: CTL_OPTIONS, allowPositionals: true });
  if (values.help) return { kind: 'help' };
  const [command, ...operands] = positionals;
  if (command === undefined) throw new UsageError('ctl needs a command: stats, health, delay, faults, pause, resume or reset');
  return { kind: 'ctl', args: { command, operands, url: values.url, token: values.token } };
}

/** parseArgs (strict by default: unknown flags and missing values throw) with its errors as UsageError. */
function strictParse<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (!code.startsWith('ERR_PARSE_ARGS_')) throw err;
    // Node's messages go on to explain `--` and `--flag=-value`; their first sentence is the point.
    const first = (err as Error).message.split(/\.(?:\s|$)/)[0];
    throw new UsageError(first.charAt(0).toLowerCase() + first.slice(1));
  }
}
