// The action's main step: check the inputs, start the proxy daemon in the background, hand
// its address to later steps. With `run`, also run the command and report in this step.
import * as core from '@actions/core';
import * as exec from '@actions/exec';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { messageOf, ReportedError } from './errors.js';
import { readInputs } from './action/inputs.js';
import { startDaemon } from './action/daemon-process.js';
import { stopAndReport } from './action/report.js';
import { saveProxyState, type ProxyState } from './action/state.js';
import { fileSafe, formatAddress, parseSettings } from './settings.js';

async function main(): Promise<void> {
  const raw = readInputs();
  const settings = parseSettings(raw);
  // One folder per step, so several proxies in one job never share a file.
  const dir = path.join(process.env.RUNNER_TEMP || os.tmpdir(), `slow-proxy-${fileSafe(settings.name)}-${randomUUID().slice(0, 8)}`);
  fs.mkdirSync(dir, { recursive: true });
  const files = {
    statsFile: path.join(dir, 'stats.json'),
    logFile: path.join(dir, 'traffic.jsonl'),
    pcapFile: settings.pcap ? path.join(dir, 'traffic.pcap') : null,
  };
  const daemonLog = path.join(dir, 'daemon.log');
  const daemon = await startDaemon(
    { settings: { ...raw, seed: String(settings.seed) }, files, statusFile: path.join(dir, 'status.json') },
    path.join(dir, 'config.json'),
    daemonLog,
  );
  const state: ProxyState = {
    pid: daemon.pid,
    dir,
    files,
    daemonLog,
    name: settings.name,
    maxWaitMs: settings.maxWaitMs,
    baseline: settings.baseline,
    maxRegressionPct: settings.maxRegressionPct,
    summary: settings.summary,
    logPayload: settings.logPayload,
    finished: false,
  };
  saveProxyState(state);

  const address = formatAddress({ host: daemon.host, port: daemon.port });
  core.setOutput('port', String(daemon.port));
  core.setOutput('address', address);
  core.setOutput('stats-file', files.statsFile);
  core.setOutput('log-file', files.logFile);
  core.setOutput('pcap-file', files.pcapFile ?? '');
  core.setOutput('control-url', daemon.controlUrl ?? '');
  if (daemon.controlToken) {
    core.setSecret(daemon.controlToken);
    core.exportVariable('SLOW_PROXY_TOKEN', daemon.controlToken);
    core.exportVariable('SLOW_PROXY_CONTROL_URL', daemon.controlUrl ?? '');
  }
  core.info(
    `${settings.name}: slow proxy listening on ${address} -> ${formatAddress(settings.target)} ` +
      `(delay ${settings.delay.text} per ${settings.delayPer}, ${settings.direction}; seed ${settings.seed}${settings.seedPicked ? ', picked at random: set `seed` to replay' : ''})`,
  );

  if (settings.run) {
    let failure: string | null = null;
    try {
      const code = await exec.exec('bash', ['-e', '-c', settings.run], {
        env: { ...process.env, SLOW_PROXY_ADDRESS: address, SLOW_PROXY_PORT: String(daemon.port) } as Record<string, string>,
        ignoreReturnCode: true,
      });
      if (code !== 0) failure = `run: the command exited with code ${code}`;
    } catch (err) {
      failure = `run: ${messageOf(err)}`;
    }
    try {
      await stopAndReport(state);
    } finally {
      // Whatever happened, this step owned the proxy: the post step must not report it again.
      saveProxyState({ ...state, finished: true });
    }
    if (failure) core.setFailed(failure);
  }
}

main().catch((err) => {
  // Bad input is one line naming the input; anything else is still one line, never a stack.
  core.setFailed(err instanceof ReportedError ? err.message : `slow-proxy: ${messageOf(err)}`);
});
