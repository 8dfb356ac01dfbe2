// The end of a proxy's life in a job: stop the daemon, read its statistics, write the job
// summary and apply the gates. Shared by the post step and by main's `run` mode.
import * as core from '@actions/core';
import fs from 'node:fs';
import { messageOf } from '../errors.js';
import { evaluateGates, loadBaseline } from '../record/gates.js';
import { readPayloadPreviews } from '../record/previews.js';
import type { SessionStats } from '../session.js';
import { PAYLOAD_PREVIEWS_LIMIT } from '../render/report.js';
import { renderSummaryMarkdown } from '../render/summary.js';
import { renderTerminal } from '../render/terminal.js';
import { lastLines, stopDaemon } from './daemon-process.js';
import type { ProxyState } from './state.js';

/** Stops the proxy, reports, and fails the step when a gate fails. Never throws. */
export async function stopAndReport(state: ProxyState): Promise<void> {
  const how = await stopDaemon(state.pid, state.dir);
  if (how !== 'stopped') {
    const tail = lastLines(state.daemonLog, 10);
    const why = how === 'already-gone' ? 'had already exited' : 'did not stop within 5 s and was killed';
    core.warning(`${state.name}: the proxy ${why}; reporting from its last flushed statistics.${tail.length ? `\nLast log lines:\n${tail.join('\n')}` : ''}`);
  }
  const stats = readStats(state.files.statsFile);
  if (!stats) {
    core.warning(`${state.name}: no statistics at ${state.files.statsFile}; nothing to report.`);
    return;
  }
  const gates = evaluateGates(stats, {
    baseline: state.baseline ? loadBaseline(state.baseline) : null,
    maxRegressionPct: state.maxRegressionPct,
  });
  core.info(renderTerminal(stats, gates));
  if (state.summary) {
    try {
      const previews = state.logPayload ? await readPayloadPreviews(state.files.logFile, PAYLOAD_PREVIEWS_LIMIT) : [];
      await core.summary.addRaw(renderSummaryMarkdown(stats, gates, { payloadPreviews: previews })).write();
    } catch (err) {
      core.warning(`${state.name}: could not write the job summary: ${messageOf(err)}`);
    }
  }
  for (const gate of gates.gates) {
    if (gate.status === 'warn') core.warning(gate.message, { title: `slow-proxy ${gate.name}` });
    // One error annotation per failing gate; setting the exit code instead of calling setFailed
    // keeps it from adding a second annotation with the same text.
    if (gate.status === 'fail') core.error(gate.message, { title: `slow-proxy ${gate.name}` });
  }
  if (!gates.passed) process.exitCode = core.ExitCode.Failure;
}

function readStats(file: string): SessionStats | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as SessionStats;
  } catch {
    return null;
  }
}
