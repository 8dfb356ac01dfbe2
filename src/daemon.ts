// The background proxy the action's main step starts: runs a Session until SIGTERM, and
// tells main how the start went through a status file (its stdio is a log file, never a
// pipe the runner would wait on).
import fs from 'node:fs';
import { messageOf, ReportedError } from './errors.js';
import { Session } from './session.js';
import { formatAddress, parseSettings } from './settings.js';
import { plural } from './render/format.js';
import type { DaemonConfig, DaemonStatus } from './action/daemon-config.js';

/** SIGTERM must end the daemon within 2 s; the final flush gets this long before the exit is forced. */
const STOP_BUDGET_MS = 1500;

function log(line: string): void {
  process.stdout.write(`${new Date().toISOString()} ${line}\n`);
}

function writeStatus(path: string, status: DaemonStatus): void {
  fs.writeFileSync(`${path}.tmp`, JSON.stringify(status));
  fs.renameSync(`${path}.tmp`, path);
}

/** A listen failure names the input that caused it, as bad input does; `reported` says it does. */
function startFailure(err: unknown, config: DaemonConfig): { error: string; reported: boolean } {
  const code = (err as NodeJS.ErrnoException).code;
  const where = `${config.settings['listen-address'] || '127.0.0.1'}:${config.settings.port || '0'}`;
  const named = (error: string) => ({ error, reported: true });
  if (code === 'EADDRINUSE') return named(`port: cannot listen on ${where}: the address is already in use (EADDRINUSE); use port 0 to pick a free one`);
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') return named(`listen-address: cannot listen on ${where}: no such address on this machine (${code})`);
  if (code === 'EACCES') return named(`port: cannot listen on ${where}: permission denied (EACCES); use a port above 1023`);
  return { error: messageOf(err), reported: err instanceof ReportedError };
}

async function run(configPath: string): Promise<void> {
  const config = JSON.parse(fs.readFileSync(configPath, 'utf8')) as DaemonConfig;
  let session: Session;
  try {
    const settings = parseSettings(config.settings);
    session = await Session.start(settings, config.files, { controlPort: 0, log });
  } catch (err) {
    const failure = startFailure(err, config);
    log(`failed to start: ${failure.error}`);
    writeStatus(config.statusFile, { ok: false, ...failure });
    process.exitCode = 1;
    return;
  }
  const address = formatAddress(session.address);
  log(`listening on ${address} -> ${formatAddress(session.settings.target)} (delay ${session.settings.delay.text}, seed ${session.settings.seed})`);
  writeStatus(config.statusFile, {
    ok: true,
    pid: process.pid,
    host: session.address.host,
    port: session.address.port,
    controlUrl: session.control?.url ?? null,
    controlToken: session.control?.token ?? null,
  });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping`);
    setTimeout(() => {
      log('stop took too long; exiting with the last flushed statistics');
      process.exit(0);
    }, STOP_BUDGET_MS).unref();
    session.stop().then(
      (stats) => {
        log(`stopped: ${plural(stats.calls.total, 'call')}, ${plural(stats.connections.total, 'connection')}`);
        process.exit(0);
      },
      (err) => {
        log(`stop failed: ${messageOf(err)}`);
        process.exit(0);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

// A bug reached from one connection must not take down the proxy for all the others.
process.on('uncaughtException', (err) => log(`internal error (continuing): ${err.stack ?? err.message}`));
process.on('unhandledRejection', (err) => log(`internal error (continuing): ${messageOf(err)}`));

const configPath = process.argv[2];
if (!configPath) {
  process.stderr.write('usage: daemon <config.json> (started by the action\'s main step)\n');
  process.exitCode = 2;
} else {
  void run(configPath);
}
