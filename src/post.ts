// The action's post step: stop the proxy main started, write the job summary, apply the gates.
// Always ends in bounded time; with nothing started, it does nothing.
import * as core from '@actions/core';
import { messageOf } from './errors.js';
import { stopAndReport } from './action/report.js';
import { loadProxyState } from './action/state.js';

async function post(): Promise<void> {
  const state = loadProxyState();
  if (!state || state.finished) return;
  await stopAndReport(state);
}

post().catch((err) => core.setFailed(`slow-proxy post: ${messageOf(err)}`));
