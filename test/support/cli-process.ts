// The `slow-proxy` command as a child process, as a user runs it: from the TypeScript source
// through tsx (fast to start), or from the built bundle the package's bin points at.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BUNDLE = path.join(ROOT, 'dist/cli/index.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  env?: Record<string, string>;
  /** Run dist/cli/index.js instead of src/cli.ts. */
  bundle?: boolean;
  /** Kill the process (SIGKILL) if it has not exited by then; default 30 s. */
  timeoutMs?: number;
}

export class CliProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<CliResult>;
  private out = '';
  private err = '';

  constructor(args: string[], opts: CliOptions = {}) {
    const command = opts.bundle ? [BUNDLE] : ['--import', 'tsx', path.join(ROOT, 'src/cli.ts')];
    this.child = spawn(process.execPath, [...command, ...args], {
      cwd: ROOT,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.on('data', (b: Buffer) => (this.out += b.toString('utf8')));
    this.child.stderr!.on('data', (b: Buffer) => (this.err += b.toString('utf8')));
    const timer = setTimeout(() => this.child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    this.exited = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout: this.out, stderr: this.err });
      });
    });
  }

  get stdout(): string {
    return this.out;
  }

  /** Resolves with the first match of `pattern` in stdout; rejects if the process exits first or time runs out. */
  async waitForStdout(pattern: RegExp, timeoutMs = 15_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    let gone = false;
    void this.exited.then(() => (gone = true));
    for (;;) {
      const match = this.out.match(pattern);
      if (match) return match;
      if (gone || Date.now() > deadline) {
        throw new Error(`no ${pattern} in the output (${gone ? 'exited' : 'timed out'})\n--- stdout\n${this.out}\n--- stderr\n${this.err}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** Runs the command to its end. */
export function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return new CliProcess(args, opts).exited;
}

/** What a process printed, for assertion messages. */
export function transcriptOf(result: CliResult): string {
  return `exit ${result.code ?? result.signal}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
}
