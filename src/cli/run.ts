// `slow-proxy --target ...`: run the proxy in the foreground until Ctrl-C or SIGTERM, then print
// the report. The exit code is the gates' verdict, so a script can use the CLI as a check.
import { messageOf } from '../errors.js';
import { formatFault } from '../policy/faults.js';
import { Session } from '../session.js';
import { formatAddress, parseSettings, type Settings } from '../settings.js';
import type { RunArgs } from './args.js';
import { describeFiles, prepareFiles } from './files.js';
import { stopAndReport } from './report.js';
import { StatusLine, statusText } from './status-line.js';

/** Exit codes of a second signal, as a shell reports a process killed by it. */
const SIGNAL_EXIT: Record<'SIGINT' | 'SIGTERM', number> = { SIGINT: 130, SIGTERM: 143 };

export async function runProxy(args: RunArgs): Promise<number> {
  const settings = parseSettings(args.raw);
  const files = prepareFiles(settings, args.files);
  let status: StatusLine | null = null;
  const log = (line: string): void => {
    status?.clear();
    process.stderr.write(`slow-proxy: ${line}\n`);
  };
  const session = await Session.start(settings, files, { controlPort: args.controlPort, log }).catch((err: unknown) => {
    throw new Error(`could not start: ${messageOf(err)}`);
  });
  // As in the daemon: a bug reached from one connection must not take down the proxy for the others.
  process.on('uncaughtException', (err) => log(`internal error (continuing): ${err.stack ?? err.message}`));
  process.on('unhandledRejection', (err) => log(`internal error (continuing): ${messageOf(err)}`));
  process.stdout.write(`${readyText(session)}\n`);
  status = new StatusLine(process.stdout, () => statusText(session.recorder.snapshot({ endedAt: null }), session.engine.paused()));
  status.start();

  const signal = await new Promise<'SIGINT' | 'SIGTERM'>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  // Stopping waits for the files; a second signal means the user will not wait.
  for (const again of ['SIGINT', 'SIGTERM'] as const) {
    process.removeAllListeners(again);
    process.once(again, () => process.exit(SIGNAL_EXIT[again]));
  }
  status.stop();
  process.stderr.write(`${signal}: stopping (again to quit at once)\n`);
  const report = await stopAndReport(session);
  process.stdout.write(`\n${report.text}`);
  return report.passed ? 0 : 1;
}

function readyText(session: Session): string {
  const s = session.settings;
  const lines = [
    `slow-proxy listening on ${formatAddress(session.address)} -> ${formatAddress(s.target)} (${policyText(s)})`,
  ];
  if (session.control) {
    const { url, token } = session.control;
    lines.push(
      `control API on ${url}; for slow-proxy ctl in another shell:`,
      `  export SLOW_PROXY_CONTROL_URL=${url} SLOW_PROXY_TOKEN=${token}`,
    );
  }
  lines.push(describeFiles(session.files), 'Ctrl-C stops the proxy and prints the report.');
  return lines.join('\n');
}

function policyText(s: Settings): string {
  const parts = [`delay ${s.delay.text} per ${s.delayPer}, ${s.direction}`];
  if (s.faults.length > 0) parts.push(`faults: ${s.faults.map(formatFault).join(', ')}`);
  parts.push(s.seedPicked ? `seed ${s.seed}, picked at random: --seed ${s.seed} replays it` : `seed ${s.seed}`);
  return parts.join('; ');
}
