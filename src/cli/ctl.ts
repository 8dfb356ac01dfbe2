// `slow-proxy ctl <command>`: one request to a running proxy's control API, its JSON reply on stdout.
import { messageOf } from '../errors.js';
import { UsageError, type CtlArgs } from './args.js';

const REQUEST_TIMEOUT_MS = 10_000;

interface CtlRequest {
  method: 'GET' | 'PUT' | 'POST';
  path: string;
  body?: string;
}

/** Commands by name; `operands` are the words after the command. */
const COMMANDS: Record<string, (operands: string[]) => CtlRequest> = {
  stats: () => ({ method: 'GET', path: '/stats' }),
  health: () => ({ method: 'GET', path: '/health' }),
  // A policy with spaces may arrive quoted or as several words; either way it is one policy.
  delay: (operands) => {
    if (operands.length === 0) throw new UsageError('ctl delay needs a policy, e.g. slow-proxy ctl delay 5s');
    return { method: 'PUT', path: '/delay', body: operands.join(' ') };
  },
  // One fault per argument (or per line of an argument); no argument clears the faults.
  faults: (operands) => ({ method: 'PUT', path: '/faults', body: operands.join('\n') }),
  pause: () => ({ method: 'POST', path: '/pause' }),
  resume: () => ({ method: 'POST', path: '/resume' }),
  reset: () => ({ method: 'POST', path: '/reset' }),
};

const TAKES_OPERANDS = new Set(['delay', 'faults']);

/** Sends the command; returns the exit code (0 on a 2xx reply, 1 otherwise). Usage mistakes throw UsageError. */
export async function runCtl(args: CtlArgs, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const build = Object.hasOwn(COMMANDS, args.command) ? COMMANDS[args.command] : undefined;
  if (!build) throw new UsageError(`unknown ctl command '${args.command}' (stats, health, delay, faults, pause, resume or reset)`);
  if (!TAKES_OPERANDS.has(args.command) && args.operands.length > 0) {
    throw new UsageError(`ctl ${args.command} takes no arguments, got '${args.operands.join(' ')}'`);
  }
  const request = build(args.operands);
  const base = args.url ?? env.SLOW_PROXY_CONTROL_URL;
  const token = args.token ?? env.SLOW_PROXY_TOKEN;
  if (!base) throw new UsageError('ctl needs the control URL: --url or SLOW_PROXY_CONTROL_URL (printed by slow-proxy --control-port 0)');
  if (!token) throw new UsageError('ctl needs the token: --token or SLOW_PROXY_TOKEN (printed with the control URL)');
  let url: URL;
  try {
    url = new URL(request.path, base);
  } catch {
    throw new UsageError(`ctl: ${JSON.stringify(base)} is not a URL, e.g. http://127.0.0.1:41234`);
  }

  let response: Response;
  let text: string;
  try {
    response = await fetch(url, {
      method: request.method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain; charset=utf-8' },
      body: request.body,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    text = await response.text();
  } catch (err) {
    process.stderr.write(`slow-proxy ctl: cannot reach ${url.origin}: ${failureOf(err)}\n`);
    return 1;
  }
  if (!response.ok) {
    process.stderr.write(`slow-proxy ctl: ${request.method} ${request.path} failed (${response.status}): ${errorOf(text)}\n`);
    return 1;
  }
  process.stdout.write(`${pretty(text)}\n`);
  return 0;
}

/** fetch says `fetch failed`; the reason (ECONNREFUSED, a timeout) is in its cause. */
function failureOf(err: unknown): string {
  if (err instanceof Error && err.name === 'TimeoutError') return `no reply within ${REQUEST_TIMEOUT_MS / 1000} s`;
  const cause = err instanceof Error ? (err.cause as NodeJS.ErrnoException | undefined) : undefined;
  if (cause?.code) return cause.code;
  return cause ? messageOf(cause) : messageOf(err);
}

function errorOf(text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: unknown };
    if (typeof parsed.error === 'string') return parsed.error;
  } catch {
    // not JSON: say what came back
  }
  return text.trim().slice(0, 200) || 'empty reply';
}

function pretty(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text.trim();
  }
}
