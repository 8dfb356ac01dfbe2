// The end of a CLI run: stop the session, judge the gates, render the report for the terminal.
import { evaluateGates, loadBaseline } from '../record/gates.js';
import { renderTerminal } from '../render/terminal.js';
import type { Session } from '../session.js';
import { describeFiles } from './files.js';

export interface FinalReport {
  text: string;
  /** False when a gate failed. */
  passed: boolean;
}

export async function stopAndReport(session: Session): Promise<FinalReport> {
  const stats = await session.stop();
  const { baseline, maxRegressionPct } = session.settings;
  const gates = evaluateGates(stats, { baseline: baseline ? loadBaseline(baseline) : null, maxRegressionPct });
  return { text: `${renderTerminal(stats, gates)}\nFiles\n${describeFiles(session.files)}\n`, passed: gates.passed };
}
