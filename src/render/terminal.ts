// The report as plain text for a terminal (the CLI prints it): aligned columns, no markup.

import type { GateReport } from '../record/gates.js';
import type { Stats } from '../record/stats.js';
import { formatMs } from './format.js';
import {
  baselineTable,
  connectionsLeftOut,
  connectionsTable,
  gatesTable,
  headline,
  outcomeTable,
  settingsTable,
  slowestTable,
  timelineCaption,
  trafficLine,
  warnings,
  type Cell,
  type Table,
  type Verdict,
} from './report.js';

const VERDICT_WORD: Record<Verdict, string> = { pass: 'PASS', fail: 'FAIL', warn: 'WARN', info: 'INFO' };
/** Columns of the text chart; wider would wrap in an 80-column terminal. */
const CHART_COLUMNS = 60;
const BLOCKS = ' ▁▂▃▄▅▆▇█';

export function renderTerminal(stats: Stats, gates: GateReport): string {
  const top = headline(stats, gates);
  const parts: string[] = [`${VERDICT_WORD[top.verdict]}  ${plain(top.text)}`];
  for (const warning of warnings(stats, gates)) parts.push(`WARN  ${plain(warning)}`);
  parts.push(textTable(outcomeTable(stats)), plain(trafficLine(stats)));
  if (gates.gates.length > 0) parts.push(section('Gates', textTable(gatesTable(gates))));
  if (gates.baselineRows.length > 0) parts.push(section('Compared with the baseline', textTable(baselineTable(gates))));
  if (stats.timeline.points.length > 0) parts.push(section('Delay and wait per call', textChart(stats)));
  if (stats.slowest.length > 0) parts.push(section('Slowest calls', textTable(slowestTable(stats))));
  parts.push(section('Settings', textTable(settingsTable(stats))));
  if (stats.connectionRows.length > 0) {
    const leftOut = connectionsLeftOut(stats);
    parts.push(section('Connections', textTable(connectionsTable(stats)) + (leftOut ? `\n${leftOut}` : '')));
  }
  return `${parts.join('\n\n')}\n`;
}

function section(title: string, body: string): string {
  return `${title}\n${body}`;
}

function textTable(table: Table): string {
  const right = new Set(table.right ?? []);
  const rows = [table.header, ...table.rows.map((row) => row.map(cellText))];
  const widths = table.header.map((_, col) => Math.max(...rows.map((row) => width(row[col] ?? ''))));
  const line = (row: string[]): string =>
    row
      .map((cell, col) => {
        const pad = ' '.repeat(widths[col] - width(cell));
        return right.has(col) ? pad + cell : col === row.length - 1 ? cell : cell + pad;
      })
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(rows[0]), rule, ...rows.slice(1).map(line)].join('\n');
}

/** Two rows of block characters on one scale: a picture of when the delays came and how the waits followed. */
function textChart(stats: Stats): string {
  const points = stats.timeline.points;
  const perColumn = Math.ceil(points.length / CHART_COLUMNS);
  const columns: { delay: number; wait: number }[] = [];
  for (let i = 0; i < points.length; i += perColumn) {
    const group = points.slice(i, i + perColumn);
    columns.push({ delay: Math.max(...group.map((p) => p.maxDelayMs)), wait: Math.max(...group.map((p) => p.maxWaitMs)) });
  }
  const top = Math.max(...columns.map((c) => Math.max(c.delay, c.wait)));
  const bar = (ms: number): string => (top <= 0 ? BLOCKS[1] : BLOCKS[Math.max(1, Math.round((ms / top) * (BLOCKS.length - 1)))]);
  const first = points[0].fromCall;
  const last = points[points.length - 1].toCall;
  return [
    `delay  ${columns.map((c) => bar(c.delay)).join('')}`,
    `wait   ${columns.map((c) => bar(c.wait)).join('')}`,
    `       calls ${first} to ${last}; full height = ${formatMs(top)}; ${timelineCaption(stats)}`,
  ].join('\n');
}

function cellText(cell: Cell): string {
  return plain(typeof cell === 'string' ? cell : cell.code);
}

/** User text without control characters, so it cannot move the cursor or recolour the terminal. */
function plain(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

function width(text: string): number {
  return [...text].length;
}
