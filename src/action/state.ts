// What main leaves for post, through the runner's step state (GITHUB_STATE / STATE_*),
// in one JSON value so the two steps cannot disagree on a key.
import * as core from '@actions/core';
import type { SessionFiles } from '../session.js';

export interface ProxyState {
  pid: number;
  /** The folder under RUNNER_TEMP that holds this step's files. */
  dir: string;
  files: SessionFiles;
  daemonLog: string;
  name: string;
  maxWaitMs: number | null;
  baseline: string | null;
  maxRegressionPct: number;
  summary: boolean;
  logPayload: boolean;
  /** Set when main already stopped the proxy and reported (the `run` input). */
  finished: boolean;
}

const KEY = 'slow-proxy';

export function saveProxyState(state: ProxyState): void {
  core.saveState(KEY, JSON.stringify(state));
}

/** The state main saved, or null when main started nothing. */
export function loadProxyState(): ProxyState | null {
  const raw = core.getState(KEY);
  if (!raw) return null;
  try {
    return JSON.parse(raw) as ProxyState;
  } catch {
    return null;
  }
}
