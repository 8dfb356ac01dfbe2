// Runs the action's bundled entry points (dist/main, dist/post) the way the GitHub runner does:
// every input declared in action.yml as INPUT_<NAME> (defaults filled in), the GITHUB_OUTPUT,
// GITHUB_STATE, GITHUB_ENV and GITHUB_STEP_SUMMARY files, RUNNER_TEMP, STATE_<name> for the post
// step from what main saved, and the workflow commands on stdout read back as annotations.

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SessionStats } from '../../src/session.js';
import { readActionYml } from './action-yml.js';

const ROOT = join(import.meta.dirname, '..', '..');
const ENTRY = { main: join(ROOT, 'dist', 'main', 'index.js'), post: join(ROOT, 'dist', 'post', 'index.js') };
/** A step that runs longer than this is killed and reported as timed out. */
const STEP_TIMEOUT_MS = 30_000;

/** The defaults action.yml declares, by input name: the runner passes them when a workflow leaves an input out. */
export function actionDefaults(): Record<string, string> {
  return Object.fromEntries(readActionYml().inputs.map((input) => [input.name, input.props.default ?? '']));
}

/** The runner's files for one job; steps append to them, so several steps (and instances) can share them. */
export class Job {
  readonly dir: string;
  readonly runnerTemp: string;
  readonly outputFile: string;
  readonly stateFile: string;
  readonly envFile: string;
  readonly summaryFile: string;

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'slow-proxy-action-test-'));
    this.runnerTemp = join(this.dir, 'runner-temp');
    this.outputFile = join(this.dir, 'github-output');
    this.stateFile = join(this.dir, 'github-state');
    this.envFile = join(this.dir, 'github-env');
    this.summaryFile = join(this.dir, 'step-summary.md');
    for (const file of [this.outputFile, this.stateFile, this.envFile, this.summaryFile]) writeFileSync(file, '');
    // RUNNER_TEMP exists on a runner before any step runs.
    mkdirSync(this.runnerTemp);
  }

  summary(): string {
    return readFileSync(this.summaryFile, 'utf8');
  }

  /** Everything the job exported so far (GITHUB_ENV), as the next steps would see it. */
  env(): Record<string, string> {
    return parseKeyValueFile(readFileSync(this.envFile, 'utf8'));
  }

  /** SIGKILL every process of this job still alive (a daemon a failed test left behind); returns their pids. */
  killDaemons(): number[] {
    const pids = processesMentioning(this.dir);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    return pids;
  }

  remove(): void {
    this.killDaemons();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface Annotation {
  kind: 'error' | 'warning' | 'notice';
  properties: Record<string, string>;
  message: string;
}

export interface StepResult {
  /** Exit code; null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  /** From spawn to the process's exit. */
  exitMs: number;
  /**
   * From spawn to the 'close' event: when every holder of the step's stdout/stderr let go. The runner
   * waits for that, so a background child that inherited them would hang the step.
   */
  closeMs: number;
  annotations: Annotation[];
  errors: Annotation[];
  warnings: Annotation[];
  /** Values passed to `::add-mask::`. */
  masks: string[];
  /** The outputs this step set. */
  outputs: Record<string, string>;
  /** The state this step saved, for its post step. */
  state: Record<string, string>;
  /** The variables this step exported. */
  exported: Record<string, string>;
  /** What this step appended to the job summary. */
  summary: string;
}

export interface StepOptions {
  /** Extra environment, e.g. the job's exported variables or a PATH. */
  env?: Record<string, string>;
  /** STATE_<name> values (the post step gets main's). */
  state?: Record<string, string>;
  timeoutMs?: number;
}

/** Runs one entry of the action as a step of `job`, with `inputs` over the action.yml defaults. */
export async function runStep(job: Job, entry: 'main' | 'post', inputs: Record<string, string>, opts: StepOptions = {}): Promise<StepResult> {
  const env: Record<string, string> = {};
  // Only what a runner would give a step: nothing of ours (an INPUT_ or STATE_ leaking in would fake a result).
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || /^(INPUT_|STATE_|GITHUB_|RUNNER_|ACTIONS_|SLOW_PROXY_)/.test(key)) continue;
    if (key.startsWith('NODE_') || key === 'TSX_TSCONFIG_PATH') continue;
    env[key] = value;
  }
  Object.assign(env, {
    GITHUB_ACTIONS: 'true',
    CI: 'true',
    GITHUB_OUTPUT: job.outputFile,
    GITHUB_STATE: job.stateFile,
    GITHUB_ENV: job.envFile,
    GITHUB_STEP_SUMMARY: job.summaryFile,
    RUNNER_TEMP: job.runnerTemp,
    GITHUB_WORKSPACE: job.dir,
  });
  for (const [name, value] of Object.entries({ ...actionDefaults(), ...inputs })) env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] = value;
  for (const [name, value] of Object.entries(opts.state ?? {})) env[`STATE_${name}`] = value;
  Object.assign(env, opts.env ?? {});

  const before = {
    output: readFileSync(job.outputFile).length,
    state: readFileSync(job.stateFile).length,
    env: readFileSync(job.envFile).length,
    summary: readFileSync(job.summaryFile).length,
  };
  const started = performance.now();
  const child = spawn(process.execPath, [ENTRY[entry]], { env, cwd: job.dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  let exitMs = Infinity;
  child.once('exit', () => (exitMs = performance.now() - started));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
    // A grandchild may hold the pipes past the step's exit; stop waiting for it.
    child.stdout.destroy();
    child.stderr.destroy();
  }, opts.timeoutMs ?? STEP_TIMEOUT_MS);
  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  clearTimeout(timer);
  const closeMs = performance.now() - started;

  const appended = (file: string, from: number) => readFileSync(file).subarray(from).toString('utf8');
  const state = parseKeyValueFile(appended(job.stateFile, before.state));
  const annotations = parseAnnotations(stdout);
  return {
    code,
    signal,
    timedOut,
    stdout,
    exitMs,
    stderr,
    closeMs,
    annotations,
    errors: annotations.filter((a) => a.kind === 'error'),
    warnings: annotations.filter((a) => a.kind === 'warning'),
    masks: commandLines(stdout)
      .filter((c) => c.command === 'add-mask')
      .map((c) => c.message),
    outputs: parseKeyValueFile(appended(job.outputFile, before.output)),
    state,
    exported: parseKeyValueFile(appended(job.envFile, before.env)),
    summary: appended(job.summaryFile, before.summary),
  };
}

/** The post step of `main`: the same inputs, and STATE_<name> from what main saved. */
export async function runPost(job: Job, main: StepResult, inputs: Record<string, string>, opts: StepOptions = {}): Promise<StepResult> {
  return runStep(job, 'post', inputs, { ...opts, state: { ...main.state, ...opts.state } });
}

/**
 * The runner's file-command format: `name<<delimiter` NL value NL `delimiter`, or the older `name=value`
 * one-liner. A later value for a name replaces the earlier one, as on the runner.
 */
export function parseKeyValueFile(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line === '') continue;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const [, name, delimiter] = heredoc;
      const end = lines.indexOf(delimiter, i + 1);
      if (end === -1) throw new Error(`unterminated value for ${name}: no line ${delimiter}`);
      values[name] = lines.slice(i + 1, end).join('\n');
      i = end;
      continue;
    }
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`not a file command line: ${JSON.stringify(line)}`);
    values[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return values;
}

interface CommandLine {
  command: string;
  properties: Record<string, string>;
  message: string;
}

function commandLines(stdout: string): CommandLine[] {
  const out: CommandLine[] = [];
  for (const line of stdout.split(/\r?\n/)) {
    const match = /^::([A-Za-z-]+)(?: ([^:]*))?::(.*)$/.exec(line);
    if (!match) continue;
    const properties: Record<string, string> = {};
    for (const pair of (match[2] ?? '').split(',').filter(Boolean)) {
      const eq = pair.indexOf('=');
      properties[pair.slice(0, eq)] = unescapeProperty(pair.slice(eq + 1));
    }
    out.push({ command: match[1], properties, message: unescapeData(match[3]) });
  }
  return out;
}

/** `::error title=...::message` and friends, as the runner turns them into annotations. */
export function parseAnnotations(stdout: string): Annotation[] {
  return commandLines(stdout)
    .filter((c): c is CommandLine & { command: Annotation['kind'] } => ['error', 'warning', 'notice'].includes(c.command))
    .map((c) => ({ kind: c.command, properties: c.properties, message: c.message }));
}

function unescapeData(text: string): string {
  return text.replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%25/g, '%');
}

function unescapeProperty(text: string): string {
  return text.replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%3A/g, ':').replace(/%2C/g, ',').replace(/%25/g, '%');
}

/** What a failing step printed, for assertion messages. */
export function transcript(step: StepResult): string {
  return `exit ${step.code}${step.timedOut ? ' (timed out)' : ''}\n--- stdout\n${step.stdout}\n--- stderr\n${step.stderr}`;
}


// ---- What a job around the action does: a service behind the proxy, a client in front of it ----

export interface Upstream {
  port: number;
  target: string;
  /** Bytes received, all connections together. */
  received(): Buffer;
  close(): Promise<void>;
}

/** A TCP service that answers every chunk with `re:<chunk>` (or with `reply(chunk)`). */
export async function startUpstream(reply: (chunk: Buffer) => Buffer = (chunk) => Buffer.concat([Buffer.from('re:'), chunk])): Promise<Upstream> {
  const sockets = new Set<net.Socket>();
  const seen: Buffer[] = [];
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.on('data', (chunk) => {
      seen.push(chunk);
      socket.write(reply(chunk));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    target: `127.0.0.1:${port}`,
    received: () => Buffer.concat(seen),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** One request/response over a fresh connection to `port`; resolves with the first response bytes. */
export function callThrough(port: number, payload: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer through 127.0.0.1:${port} within 10 s`));
    }, 10_000);
    socket.once('connect', () => socket.write(payload));
    socket.once('data', (data) => {
      clearTimeout(timer);
      socket.end();
      resolve(data.toString('latin1'));
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** The error code of a connection attempt, or 'connected'. */
export function connectResult(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/** Gone, or an exited process nobody has reaped yet (the daemon's parent, main, is long gone). */
export function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/** Live processes whose command line mentions `text` (a job's folder: its daemons' config files are there). */
export function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(text) && !processGone(Number(entry))) pids.push(Number(entry));
    } catch {
      /* exited while we looked */
    }
  }
  return pids;
}

export async function waitFor<T>(what: string, check: () => T | null | undefined | false, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The stats file, or null while it is missing or torn. */
export function readStats(file: string): SessionStats | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as SessionStats;
  } catch {
    return null;
  }
}

