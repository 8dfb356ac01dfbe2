// Start-up of the bundled action: the daemon alone (spawned as src/action/daemon-process.ts does,
// ready when its status file says so), and the main and post steps end to end with the runner's
// INPUT_* variables and GITHUB_* files.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DaemonConfig, DaemonStatus } from '../../src/action/daemon-config.js';
import { connect, pingPongs } from './traffic.js';

export const DIST = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'dist');

export function distBuilt(): boolean {
  return ['daemon', 'main', 'post'].every((entry) => fs.existsSync(path.join(DIST, entry, 'index.js')));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function millis(since: bigint): number {
  return Number(process.hrtime.bigint() - since) / 1e6;
}

export interface DaemonTiming {
  readyMs: number;
  stopMs: number;
}

/** Spawn to status file (polled every 2 ms, finer than main's 20 ms, to time the daemon itself), then SIGTERM to exit. */
export async function daemonStartStop(targetPort: number): Promise<DaemonTiming> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slow-proxy-bench-daemon-'));
  try {
    const config: DaemonConfig = {
      settings: { target: `127.0.0.1:${targetPort}`, delay: '0ms', seed: '1' },
      files: { statsFile: path.join(dir, 'stats.json'), logFile: path.join(dir, 'traffic.jsonl'), pcapFile: null },
      statusFile: path.join(dir, 'status.json'),
    };
    const configFile = path.join(dir, 'config.json');
    fs.writeFileSync(configFile, JSON.stringify(config));
    const out = fs.openSync(path.join(dir, 'daemon.log'), 'a');
    const start = process.hrtime.bigint();
    const child = spawn(process.execPath, [path.join(DIST, 'daemon', 'index.js'), configFile], { detached: true, stdio: ['ignore', out, out] });
    fs.closeSync(out);
    const exited = once(child, 'exit');
    let status: DaemonStatus | null = null;
    while (!status) {
      if (child.exitCode !== null) throw new Error(`the daemon exited (code ${child.exitCode}): ${fs.readFileSync(path.join(dir, 'daemon.log'), 'utf8')}`);
      try {
        status = JSON.parse(fs.readFileSync(config.statusFile, 'utf8')) as DaemonStatus;
      } catch {
        await sleep(2);
      }
    }
    const readyMs = millis(start);
    if (!status.ok) throw new Error(`the daemon failed: ${status.error}`);
    const socket = await connect(status.port);
    await pingPongs(socket, 1, 64);
    socket.destroy();
    const stopping = process.hrtime.bigint();
    child.kill('SIGTERM');
    await exited;
    return { readyMs, stopMs: millis(stopping) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export interface StepTiming {
  mainMs: number;
  postMs: number;
  summaryBytes: number;
}

/** `node dist/main/index.js`, one call through the proxy, then `node dist/post/index.js`, as the runner runs them. */
export async function mainAndPost(targetPort: number): Promise<StepTiming> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slow-proxy-bench-steps-'));
  try {
    const files = {
      GITHUB_OUTPUT: path.join(dir, 'output'),
      GITHUB_STATE: path.join(dir, 'state'),
      GITHUB_ENV: path.join(dir, 'env'),
      GITHUB_STEP_SUMMARY: path.join(dir, 'summary.md'),
    };
    for (const file of Object.values(files)) fs.writeFileSync(file, '');
    const runnerTemp = path.join(dir, 'runner-temp');
    fs.mkdirSync(runnerTemp);
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      RUNNER_TEMP: runnerTemp,
      ...files,
      'INPUT_TARGET': `127.0.0.1:${targetPort}`,
      'INPUT_DELAY': '0ms',
      'INPUT_MAX-WAIT': '2s',
      'INPUT_SUMMARY': 'true',
    };
    const mainMs = await runStep('main', env);
    const outputs = readFileCommands(files.GITHUB_OUTPUT);
    const port = Number(outputs.port);
    if (!port) throw new Error(`main set no port output: ${JSON.stringify(outputs)}`);
    const socket = await connect(port);
    await pingPongs(socket, 1, 64);
    socket.destroy();
    const state = readFileCommands(files.GITHUB_STATE);
    const postEnv: NodeJS.ProcessEnv = { ...env };
    for (const [key, value] of Object.entries(state)) postEnv[`STATE_${key}`] = value;
    let postMs: number;
    try {
      postMs = await runStep('post', postEnv);
    } catch (err) {
      // post did not stop the daemon main left running: stop it here, by the pid main saved.
      const pid = (JSON.parse(state['slow-proxy'] ?? '{}') as { pid?: number }).pid;
      if (pid) process.kill(pid, 'SIGKILL');
      throw err;
    }
    const summaryBytes = fs.statSync(files.GITHUB_STEP_SUMMARY).size;
    if (summaryBytes === 0) throw new Error('post wrote no job summary');
    return { mainMs, postMs, summaryBytes };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function runStep(entry: 'main' | 'post', env: NodeJS.ProcessEnv): Promise<number> {
  const start = process.hrtime.bigint();
  const child = spawn(process.execPath, [path.join(DIST, entry, 'index.js')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr.on('data', (b: Buffer) => (output += b.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  const took = millis(start);
  if (code !== 0) throw new Error(`${entry} exited with code ${String(code)}: ${output.trim()}`);
  return took;
}

/** The runner's file-command format: `name<<delimiter`, the value's lines, `delimiter`. */
function readFileCommands(file: string): Record<string, string> {
  const lines = fs.readFileSync(file, 'utf8').split(/\r?\n/);
  const values: Record<string, string> = {};
  for (let i = 0; i < lines.length; i += 1) {
    const match = /^([^<=]+)<<(.+)$/.exec(lines[i]);
    if (!match) continue;
    const end = lines.indexOf(match[2], i + 1);
    values[match[1]] = lines.slice(i + 1, end).join('\n');
    i = end;
  }
  return values;
}
