// What the report says, independent of where it is shown: the job summary (markdown) and the terminal (plain
// text) render these same sections, so the two never disagree. Cells hold raw text; each renderer escapes.

import type { GateReport, GateStatus } from '../record/gates.js';
import type { Stats, WaitSummary } from '../record/stats.js';
import type { Direction } from '../proxy/types.js';
import { formatBytes, formatChange, formatCount, formatMs, plural } from './format.js';

/** Longest user-controlled text shown in one cell; the stats file keeps the full value. */
export const CELL_TEXT_LIMIT = 200;
export const PAYLOAD_PREVIEWS_LIMIT = 50;
export const PAYLOAD_PREVIEW_CHARS = 120;

export type Verdict = 'pass' | 'fail' | 'warn' | 'info';

export interface Headline {
  verdict: Verdict;
  text: string;
}

/** A cell shown as code (addresses, policy text) or as plain text. */
export type Cell = string | { code: string };

export interface Table {
  header: string[];
  /** Columns aligned right (numbers). */
  right?: number[];
  rows: Cell[][];
}

/** A preview of the bytes of one call, for the report's payload section. */
export interface PayloadPreview {
  conn: number;
  call: number | null;
  dir: Direction;
  /** Printable text of the first bytes. */
  text: string;
}

export function headline(stats: Stats, gates: GateReport): Headline {
  const name = clip(stats.name);
  const failed = gates.gates.filter((gate) => gate.status === 'fail');
  const worst = stats.maxWait.worst;
  const limitMs = stats.maxWait.limitMs;
  if (failed.some((gate) => gate.name === 'max-wait') && worst && limitMs !== null) {
    return {
      verdict: 'fail',
      text: `${name}: the app waited ${formatMs(worst.waitMs)} on ${plural(stats.maxWait.exceeded, 'call')} (max-wait ${formatMs(limitMs)})`,
    };
  }
  if (failed.length > 0) return { verdict: 'fail', text: clip(failed[0].message, CELL_TEXT_LIMIT * 2) };
  if (stats.calls.total === 0) return { verdict: 'warn', text: `${name}: no calls went through the proxy` };
  const longest = stats.slowest[0]?.waitMs ?? 0;
  const delayed = stats.delayedCalls;
  if (limitMs !== null) {
    if (delayed.total > 0 && delayed.gaveUp === delayed.total) {
      return { verdict: 'pass', text: `${name}: the app gave up within ${formatMs(delayed.gaveUpMaxWaitMs)} on all ${plural(delayed.total, 'delayed call')}` };
    }
    // Only calls that were answered or given up on say how the app reacted; say the still-waiting ones apart.
    const reacted = delayed.answered + delayed.gaveUp;
    const tail = [
      reacted > 0 ? `it gave up on ${delayed.gaveUp} of ${plural(reacted, 'delayed call')}` : '',
      delayed.unfinished > 0 ? `${plural(delayed.unfinished, 'delayed call')} still waiting at the end` : '',
    ].filter(Boolean);
    return {
      verdict: 'pass',
      text: `${name}: the app waited at most ${formatMs(longest)} on all ${plural(stats.calls.total, 'call')} (max-wait ${formatMs(limitMs)})${tail.map((t) => `; ${t}`).join('')}`,
    };
  }
  const baselinePassed = gates.gates.find((gate) => gate.name === 'baseline' && gate.status === 'pass');
  if (baselinePassed) return { verdict: 'pass', text: clip(baselinePassed.message, CELL_TEXT_LIMIT * 2) };
  return {
    verdict: 'info',
    text: `${name}: ${plural(stats.calls.total, 'call')}, ${formatCount(delayed.total)} delayed; the app waited up to ${formatMs(longest)} (no max-wait set)`,
  };
}

/** Warning gates, then what the recording itself has to say (a capped traffic log, say). */
export function warnings(stats: Stats, gates: GateReport): string[] {
  const notes = [...gates.gates.filter((gate) => gate.status === 'warn').map((gate) => gate.message), ...(stats.notes ?? [])];
  return notes.map((note) => clip(note, CELL_TEXT_LIMIT * 2));
}

export function settingsTable(stats: Stats): Table {
  const faults = stats.policy.faults.length === 0 ? 'none' : { code: clip(stats.policy.faults.join(', '), CELL_TEXT_LIMIT * 2) };
  return {
    header: ['Setting', 'Value'],
    rows: [
      ['Service', clip(stats.name)],
      ['Target', { code: clip(stats.target) }],
      ['Listening on', { code: clip(stats.listen) }],
      ['Delay', { code: clip(stats.policy.delay) }],
      ['Delay per', clip(stats.policy.delayPer)],
      ['Direction', clip(stats.policy.direction)],
      ['Faults', faults],
      ['Max-wait', stats.maxWait.limitMs === null ? 'not set' : formatMs(stats.maxWait.limitMs)],
      ['Seed', `${stats.seed} (set seed: ${stats.seed} to replay the same delays and faults)`],
      ['Ran', `${stats.startedAt} to ${stats.endedAt ?? 'still running'} (${formatMs(stats.durationMs)})`],
    ],
  };
}

export function outcomeTable(stats: Stats): Table {
  const row = (label: string, summary: WaitSummary): Cell[] => [
    label,
    formatCount(summary.count),
    ...(summary.count === 0 ? ['-', '-', '-', '-'] : [formatMs(summary.p50), formatMs(summary.p95), formatMs(summary.p99), formatMs(summary.max)]),
  ];
  const { waitMs } = stats;
  return {
    header: ['Outcome', 'Calls', 'Wait p50', 'p95', 'p99', 'max'],
    right: [1, 2, 3, 4, 5],
    rows: [
      row('answered', waitMs.answered),
      row('gave up (client closed)', waitMs.gaveUp),
      row('upstream closed', waitMs.upstreamClosed),
      row('unfinished (at shutdown)', waitMs.unfinished),
      ['all calls', formatCount(stats.calls.total), '', '', '', ''],
      ['delay added by the proxy', `${formatCount(stats.delayedCalls.total)} delayed`, formatMs(stats.delayMs.p50), formatMs(stats.delayMs.p95), formatMs(stats.delayMs.p99), formatMs(stats.delayMs.max)],
    ],
  };
}

/** One sentence on connections, bytes and socket errors. */
export function trafficLine(stats: Stats): string {
  const { connections, bytes, errors } = stats;
  const failed = connections.failed > 0 ? `, ${formatCount(connections.failed)} could not reach the target` : '';
  const open = connections.open > 0 ? `, ${formatCount(connections.open)} still open` : '';
  const pending = stats.calls.pending > 0 ? `; ${plural(stats.calls.pending, 'call')} still waiting` : '';
  const codes = Object.entries(errors.byCode)
    .map(([code, n]) => `${clip(code, 40)} x${n}`)
    .join(', ');
  const errorText = errors.total > 0 ? `; ${plural(errors.total, 'socket error')} (${codes})` : '';
  return (
    `${plural(connections.total, 'connection')}${failed}${open}; ${formatBytes(bytes.upstream)} to the target, ` +
    `${formatBytes(bytes.downstream)} back${pending}${errorText}`
  );
}

const STATUS_WORD: Record<GateStatus, string> = { pass: 'pass', fail: 'FAIL', warn: 'warning' };

export function gatesTable(gates: GateReport): Table {
  return {
    header: ['Gate', 'Limit', 'This run', 'Result', 'Detail'],
    rows: gates.gates.map((gate) => [gate.name, gate.limit, gate.figure, STATUS_WORD[gate.status], clip(gate.message, CELL_TEXT_LIMIT * 2)]),
  };
}

export function baselineTable(gates: GateReport): Table {
  return {
    header: ['Outcome', 'Baseline p95', 'This run p95', 'Change', 'Result'],
    right: [1, 2, 3],
    rows: gates.baselineRows.map((row) => [
      row.outcome,
      formatMs(row.baselineP95Ms),
      formatMs(row.currentP95Ms),
      formatChange(row.changePct),
      row.status === 'skip' ? `skipped: ${row.note ?? ''}` : STATUS_WORD[row.status],
    ]),
  };
}

export function slowestTable(stats: Stats): Table {
  return {
    header: ['Call', 'Connection', 'Call on connection', 'Wait', 'Delay', 'Outcome'],
    right: [0, 1, 2, 3, 4],
    rows: stats.slowest.map((ref) => [String(ref.call), String(ref.conn), String(ref.connCall), formatMs(ref.waitMs), formatMs(ref.delayMs), ref.outcome]),
  };
}

export function connectionsTable(stats: Stats): Table {
  return {
    header: ['Connection', 'Client', 'Opened at', 'Duration', 'Calls', 'Bytes up', 'Bytes down', 'Closed'],
    right: [0, 2, 3, 4, 5, 6],
    rows: stats.connectionRows.map((row) => [
      String(row.conn),
      { code: clip(row.client) },
      `+${formatMs(row.openedMs)}`,
      row.durationMs === null ? 'open' : formatMs(row.durationMs),
      formatCount(row.calls),
      formatBytes(row.bytesUp),
      formatBytes(row.bytesDown),
      row.closeReason === null ? 'still open' : row.error ? `${row.closeReason}: ${clip(row.error)}` : row.closeReason,
    ]),
  };
}

/** Why the connection table is short, or null when it lists every connection. */
export function connectionsLeftOut(stats: Stats): string | null {
  if (stats.connectionRowsOmitted === 0) return null;
  return `${plural(stats.connectionRowsOmitted, 'later connection')} left out: only the first ${stats.connectionRows.length} are listed.`;
}

export function payloadTable(previews: PayloadPreview[]): Table {
  return {
    header: ['Call', 'Connection', 'Direction', 'First bytes'],
    right: [0, 1],
    rows: previews
      .slice(0, PAYLOAD_PREVIEWS_LIMIT)
      .map((p) => [p.call === null ? '-' : String(p.call), String(p.conn), p.dir === 'up' ? 'request' : 'response', { code: clip(p.text, PAYLOAD_PREVIEW_CHARS) }]),
  };
}

export function payloadsLeftOut(previews: PayloadPreview[]): string | null {
  const left = previews.length - PAYLOAD_PREVIEWS_LIMIT;
  return left > 0 ? `${plural(left, 'more preview')} left out.` : null;
}

/** One-line description of a timeline point's calls, for chart captions. */
export function timelineCaption(stats: Stats): string {
  const per = stats.timeline.callsPerPoint;
  return per === 1 ? 'one point per call' : `each point is the largest value among ${formatCount(per)} consecutive calls`;
}

/** User text cut to `limit` characters, on one line. */
export function clip(text: string, limit = CELL_TEXT_LIMIT): string {
  const oneLine = text.replace(/[\r\n]+/g, ' ');
  return oneLine.length > limit ? `${oneLine.slice(0, limit - 1)}…` : oneLine;
}
