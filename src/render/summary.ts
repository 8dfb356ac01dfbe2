// The job summary: the report as GitHub-flavoured markdown. Every list is capped (GitHub rejects a step summary
// over 1 MiB) and every user-controlled string is escaped, so a service name cannot inject markup.

import type { GateReport } from '../record/gates.js';
import type { Stats } from '../record/stats.js';
import { plural } from './format.js';
import {
  baselineTable,
  connectionsLeftOut,
  connectionsTable,
  gatesTable,
  headline,
  outcomeTable,
  payloadTable,
  payloadsLeftOut,
  settingsTable,
  slowestTable,
  timelineCaption,
  trafficLine,
  warnings,
  type Cell,
  type PayloadPreview,
  type Table,
  type Verdict,
} from './report.js';

export interface SummaryOptions {
  /** First bytes of some calls, shown in a collapsed section. */
  payloadPreviews?: PayloadPreview[];
}

const VERDICT_ICON: Record<Verdict, string> = { pass: '✅', fail: '❌', warn: '⚠️', info: 'ℹ️' };
/** Line colours of the chart, matched by the coloured squares of its legend. */
const DELAY_COLOUR = '#f28e2b';
const WAIT_COLOUR = '#4e79a7';
/** Points that still get a label each on the chart's x-axis. */
const MAX_LABELLED_POINTS = 20;

export function renderSummaryMarkdown(stats: Stats, gates: GateReport, opts: SummaryOptions = {}): string {
  const top = headline(stats, gates);
  const parts: string[] = [`### ${VERDICT_ICON[top.verdict]} ${escapeMarkdown(top.text)}`];
  for (const warning of warnings(stats, gates)) parts.push(`> ⚠️ ${escapeMarkdown(warning)}`);
  parts.push(markdownTable(outcomeTable(stats)), escapeMarkdown(trafficLine(stats)));
  if (gates.gates.length > 0) parts.push('#### Gates', markdownTable(gatesTable(gates)));
  if (gates.baselineRows.length > 0) parts.push('#### Compared with the baseline', markdownTable(baselineTable(gates)));
  if (stats.timeline.points.length > 0) parts.push('#### Delay and wait per call', timelineChart(stats));
  if (stats.slowest.length > 0) parts.push('#### Slowest calls', markdownTable(slowestTable(stats)));
  parts.push('#### Settings', markdownTable(settingsTable(stats)));
  if (stats.connectionRows.length > 0) {
    const leftOut = connectionsLeftOut(stats);
    const body = markdownTable(connectionsTable(stats)) + (leftOut ? `\n\n${escapeMarkdown(leftOut)}` : '');
    parts.push(details(`Traffic in short: ${plural(stats.connections.total, 'connection')}`, body));
  }
  const previews = opts.payloadPreviews ?? [];
  if (previews.length > 0) {
    const leftOut = payloadsLeftOut(previews);
    parts.push(details('Payload previews', markdownTable(payloadTable(previews)) + (leftOut ? `\n\n${escapeMarkdown(leftOut)}` : '')));
  }
  return `${parts.join('\n\n')}\n`;
}

/** A Mermaid line chart (GitHub renders Mermaid in job summaries); all its text is ours, so nothing to escape. */
function timelineChart(stats: Stats): string {
  const points = stats.timeline.points;
  // Past a few points, one label per point overlaps into a smear: a numeric range labels itself.
  const xAxis =
    points.length <= MAX_LABELLED_POINTS
      ? `[${points.map((p) => `"${p.fromCall}"`).join(', ')}]`
      : `${points[0].fromCall} --> ${points[points.length - 1].toCall}`;
  const delays = points.map((p) => Math.round(p.maxDelayMs)).join(', ');
  const waits = points.map((p) => Math.round(p.maxWaitMs)).join(', ');
  const top = Math.max(1, ...points.map((p) => Math.ceil(Math.max(p.maxDelayMs, p.maxWaitMs))));
  const chart = [
    '```mermaid',
    `%%{init: {"themeVariables": {"xyChart": {"plotColorPalette": "${DELAY_COLOUR}, ${WAIT_COLOUR}"}}}}%%`,
    'xychart-beta',
    '    title "Delay and wait per call (ms)"',
    `    x-axis "call" ${xAxis}`,
    `    y-axis "ms" 0 --> ${top}`,
    `    line [${delays}]`,
    `    line [${waits}]`,
    '```',
  ].join('\n');
  return `${chart}\n\n🟧 delay the proxy added · 🟦 how long the app waited (${timelineCaption(stats)})`;
}

function details(summary: string, body: string): string {
  return `<details><summary>${escapeMarkdown(summary)}</summary>\n\n${body}\n\n</details>`;
}

function markdownTable(table: Table): string {
  const right = new Set(table.right ?? []);
  const header = `| ${table.header.map(escapeMarkdown).join(' | ')} |`;
  const rule = `|${table.header.map((_, i) => (right.has(i) ? ' ---: ' : ' --- ')).join('|')}|`;
  const rows = table.rows.map((row) => `| ${row.map(markdownCell).join(' | ')} |`);
  return [header, rule, ...rows].join('\n');
}

function markdownCell(cell: Cell): string {
  if (typeof cell === 'string') return escapeMarkdown(cell);
  // Escapes do not work inside backtick code spans, and a `|` would still split the table: use HTML code instead.
  return `<code>${escapeMarkdown(cell.code)}</code>`;
}

/**
 * Text safe anywhere in markdown and inline HTML, except at a line start (we never put it there): characters that
 * could start markup (HTML, emphasis, links, tables, math, mentions, issue links) become numeric character
 * references, which GitHub shows as the characters themselves.
 */
export function escapeMarkdown(text: string): string {
  return text.replace(/[\r\n]+/g, ' ').replace(/[&<>"\\`*_[\]|~$@#!]/g, (ch) => `&#${ch.charCodeAt(0)};`);
}
