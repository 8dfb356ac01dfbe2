// Starting and stopping the daemon as a detached process, in bounded time either way.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ReportedError } from '../errors.js';
import type { DaemonConfig, DaemonStatus } from './daemon-config.js';

const READY_TIMEOUT_MS = 10_000;
const POLL_MS = 20;

/** dist/main/index.js and dist/post/index.js sit next to dist/daemon/index.js. */
function daemonScript(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return path.join(here, '..', 'daemon', 'index.js');
}

export interface StartedDaemon {
  pid: number;
  host: string;
  port: number;
  controlUrl: string | null;
  controlToken: string | null;
}

/**
 * Starts the daemon detached, with its output in `logFile` (never our pipes: the runner waits for
 * every holder of the step's stdout to close), and waits until it listens or fails.
 */
export async function startDaemon(config: DaemonConfig, configFile: string, logFile: string): Promise<StartedDaemon> {
  fs.writeFileSync(configFile, JSON.stringify(config));
  const out = fs.openSync(logFile, 'a');
  const child = spawn(process.execPath, [daemonScript(), configFile], {
    detached: true,
    stdio: ['ignore', out, out],
    env: process.env,
  });
  fs.closeSync(out);
  let exitCode: number | null = null;
  child.on('exit', (code, signal) => (exitCode = code ?? (signal ? 128 : 1)));
  child.on('error', () => (exitCode = exitCode ?? 1));
  child.unref();

  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const status = readStatus(config.statusFile);
    if (status?.ok) return { pid: status.pid, host: status.host, port: status.port, controlUrl: status.controlUrl, controlToken: status.controlToken };
    if (status && !status.ok) throw status.reported ? new ReportedError(status.error) : new Error(status.error);
    if (exitCode !== null) throw new Error(`the proxy exited (code ${exitCode}) before it was ready: ${lastLines(logFile, 5).join(' | ') || 'no output'}`);
    await sleep(POLL_MS);
  }
  if (child.pid) killQuietly(child.pid, 'SIGKILL');
  throw new Error(`the proxy was not ready within ${READY_TIMEOUT_MS / 1000} s: ${lastLines(logFile, 5).join(' | ') || 'no output'}`);
}

function readStatus(file: string): DaemonStatus | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as DaemonStatus;
  } catch {
    return null;
  }
}

export type StopResult = 'stopped' | 'killed' | 'already-gone';

/**
 * SIGTERM, up to `graceMs` to exit, then SIGKILL. `marker` (the config path, on the daemon's command line)
 * makes sure a dead daemon's pid, reused by another process, is never signalled.
 */
export async function stopDaemon(pid: number, marker: string, graceMs = 5000): Promise<StopResult> {
  if (!alive(pid) || !commandLineHas(pid, marker)) return 'already-gone';
  killQuietly(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!alive(pid)) return 'stopped';
    await sleep(POLL_MS);
  }
  killQuietly(pid, 'SIGKILL');
  const killDeadline = Date.now() + 1000;
  while (alive(pid) && Date.now() < killDeadline) await sleep(POLL_MS);
  return 'killed';
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !zombie(pid);
  } catch {
    // ESRCH: gone. EPERM: a process we may not signal, so not our daemon (its pid was reused).
    return false;
  }
}

function commandLineHas(pid: number, marker: string): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker);
  } catch (err) {
    // No /proc (macOS, a local run): trust the pid.
    return (err as NodeJS.ErrnoException).code !== 'ENOENT' || !fs.existsSync('/proc/self');
  }
}

/** An exited process its parent has not reaped yet (main exited; the new parent may reap late). */
function zombie(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    /* already gone */
  }
}

export function lastLines(file: string, n: number): string[] {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).filter(Boolean);
  } catch {
    return [];
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
