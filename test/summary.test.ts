// The job summary and terminal report: verdicts, escaping, caps and the Mermaid chart.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluateGates, type GateReport } from '../src/record/gates.js';
import { StatsRecorder, type Stats, type StatsMeta } from '../src/record/stats.js';
import type { CallOutcome } from '../src/proxy/types.js';
import { escapeMarkdown, renderSummaryMarkdown } from '../src/render/summary.js';
import { renderTerminal } from '../src/render/terminal.js';
import { formatMs } from '../src/render/format.js';
import type { PayloadPreview } from '../src/render/report.js';

interface Call {
  waitMs: number;
  delayMs?: number;
  outcome?: CallOutcome;
}

function run(calls: Call[], over: Partial<StatsMeta> = {}, connections = 1): Stats {
  const rec = new StatsRecorder({
    name: 'postgres',
    target: 'db:5432',
    listen: '127.0.0.1:15432',
    seed: 42,
    policy: { delay: 'fixed(20s)', delayPer: 'call', direction: 'upstream', faults: [] },
    maxWaitMs: 2000,
    startedAt: new Date('2024-05-01T10:00:00Z'),
    ...over,
  });
  for (let conn = 1; conn <= connections; conn++) rec.onOpen({ conn, client: `127.0.0.1:${50000 + conn}`, openedMs: conn });
  calls.forEach((c, i) => {
    const record = { conn: 1 + (i % connections), call: i + 1, connCall: 1, startMs: i * 10, endMs: null as number | null, delayMs: 0, outcome: null as CallOutcome | null, bytesUp: 1, bytesDown: 0 };
    rec.onCallStart(record);
    record.endMs = record.startMs + c.waitMs;
    record.delayMs = c.delayMs ?? 0;
    record.outcome = c.outcome ?? 'answered';
    rec.onCallEnd(record);
  });
  return rec.snapshot({ endedAt: new Date('2024-05-01T10:01:00Z') });
}

const answered = (n: number, waitMs = 20): Call[] => Array.from({ length: n }, () => ({ waitMs }));
const gaveUp = (n: number, waitMs = 310): Call[] => Array.from({ length: n }, () => ({ waitMs, delayMs: 20_000, outcome: 'gave-up' as const }));

/** The first line of the markdown, with character references decoded as GitHub shows them. */
function headlineOf(markdown: string): string {
  return decode(markdown.split('\n')[0]);
}

function decode(text: string): string {
  return text.replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code)));
}

function summarise(stats: Stats, gates: GateReport = evaluateGates(stats), previews?: PayloadPreview[]): string {
  return renderSummaryMarkdown(stats, gates, previews ? { payloadPreviews: previews } : {});
}

describe('headline', () => {
  test('pass: the app gave up on every delayed call', () => {
    const md = summarise(run([...answered(28), ...gaveUp(11), { waitMs: 305, delayMs: 20_000, outcome: 'gave-up' }]));
    assert.equal(headlineOf(md), '### ✅ postgres: the app gave up within 310 ms on all 12 delayed calls');
  });

  test('pass: every call within max-wait, some delayed calls answered', () => {
    const md = summarise(run([...answered(30), { waitMs: 1500, delayMs: 1400 }, ...gaveUp(2)]));
    assert.equal(headlineOf(md), '### ✅ postgres: the app waited at most 1.5 s on all 33 calls (max-wait 2 s); it gave up on 2 of 3 delayed calls');
  });

  test('fail: calls over max-wait', () => {
    const md = summarise(run([...answered(37), ...Array.from({ length: 3 }, () => ({ waitMs: 20_100, delayMs: 20_000 }))]));
    assert.equal(headlineOf(md), '### ❌ postgres: the app waited 20.1 s on 3 calls (max-wait 2 s)');
  });

  test('fail: regression against the baseline only', () => {
    const baseline = run([...answered(50, 100)]);
    const stats = run([...answered(50, 400)]);
    const md = summarise(stats, evaluateGates(stats, { baseline: { path: 'b.json', stats: baseline } }));
    assert.equal(headlineOf(md), '### ❌ postgres: p95 wait of answered calls grew from 100 ms to 400 ms (+300%, max-regression 20%)');
    assert.match(decode(md), /#### Compared with the baseline\n\n\| Outcome \| Baseline p95 \| This run p95 \| Change \| Result \|/);
    assert.match(decode(md), /\| answered \| 100 ms \| 400 ms \| \+300% \| FAIL \|/);
    assert.match(decode(md), /\| gave up \| - \| - \| - \| skipped: no gave up calls in either run \|/);
  });

  test('info: no gate set', () => {
    const md = summarise(run([...answered(28), ...gaveUp(10, 2100), { waitMs: 50, delayMs: 40 }, { waitMs: 60, delayMs: 40 }], { maxWaitMs: null }));
    assert.equal(headlineOf(md), 'ℹ️ postgres: 40 calls, 12 delayed; the app waited up to 2.1 s (no max-wait set)'.replace(/^/, '### '));
    assert.doesNotMatch(md, /#### Gates/);
  });

  test('warn: nothing went through the proxy; baseline warnings show under the headline', () => {
    const stats = run([]);
    const md = summarise(stats, evaluateGates(stats, { baseline: { path: 'b.json', warning: 'b.json does not exist' } }));
    const lines = decode(md).split('\n');
    assert.equal(lines[0], '### ⚠️ postgres: no calls went through the proxy');
    assert.equal(lines[2], "> ⚠️ postgres: no calls went through the proxy, so max-wait 2 s checked nothing; does the app connect to the proxy's address?");
    assert.equal(lines[4], '> ⚠️ postgres: not compared with a baseline: b.json does not exist');
    assert.doesNotMatch(md, /```mermaid/);
  });
});

describe('markdown', () => {
  test('escapes user-controlled text', () => {
    const stats = run(answered(3), {
      name: '<script>alert(1)</script> | *db* @team #1',
      target: 'evil|host`x`:5432',
      policy: { delay: 'fixed(1s) | <b>x</b>', delayPer: 'call\n# heading', direction: '[up](http://x)', faults: ['reset after=1s', '**bold**'] },
    });
    stats.connectionRows[0].client = '<img src=x onerror=alert(1)>';
    const md = summarise(stats);
    assert.doesNotMatch(md, /<script|<b>|<img|\*\*bold|\*db\*|\n# heading|\[up\]|@team| #1/);
    assert.equal(headlineOf(md), '### ✅ postgres: the app waited at most 20 ms on all 3 calls (max-wait 2 s)'.replace('postgres', '<script>alert(1)</script> | *db* @team #1'));
    // Every table row keeps its column count: no stray `|` from user text.
    for (const line of md.split('\n').filter((l) => l.startsWith('| Target') || l.startsWith('| Delay') || l.startsWith('| Faults'))) {
      assert.equal(line.split('|').length, 4, line);
    }
    assert.match(md, /\| Delay per \| call &#35; heading \|/);
    assert.equal(escapeMarkdown('a|b<c>&d\ne'), 'a&#124;b&#60;c&#62;&#38;d e');
  });

  test('shows the settings, the seed that replays the run, and the outcome table', () => {
    const md = decode(summarise(run([...answered(9), ...gaveUp(1)], { policy: { delay: 'ramp(from=0ms, step=250ms, to=5s)', delayPer: 'connection', direction: 'both', faults: ['reset after=2s'] } })));
    assert.match(md, /\| Target \| <code>db:5432<\/code> \|/);
    assert.match(md, /\| Listening on \| <code>127.0.0.1:15432<\/code> \|/);
    assert.match(md, /\| Delay \| <code>ramp\(from=0ms, step=250ms, to=5s\)<\/code> \|/);
    assert.match(md, /\| Delay per \| connection \|/);
    assert.match(md, /\| Direction \| both \|/);
    assert.match(md, /\| Faults \| <code>reset after=2s<\/code> \|/);
    assert.match(md, /\| Seed \| 42 \(set seed: 42 to replay the same delays and faults\) \|/);
    assert.match(md, /\| answered \| 9 \| 20 ms \| 20 ms \| 20 ms \| 20 ms \|/);
    assert.match(md, /\| gave up \(client closed\) \| 1 \| 310 ms \| 310 ms \| 310 ms \| 310 ms \|/);
    assert.match(md, /\| upstream closed \| 0 \| - \| - \| - \| - \|/);
    assert.match(md, /\| max-wait \| 2 s \| 310 ms \| pass \| postgres: the app waited at most 310 ms on all 10 calls \(max-wait 2 s\) \|/);
    assert.match(md, /#### Slowest calls\n\n\| Call \| Connection \| Call on connection \| Wait \| Delay \| Outcome \|\n\| ---: \| ---: \| ---: \| ---: \| ---: \| --- \|\n\| 10 \| 1 \| 1 \| 310 ms \| 20 s \| gave-up \|/);
  });

  test('caps connection rows and payload previews, and says what was left out', () => {
    const stats = run(answered(300), {}, 250);
    const previews: PayloadPreview[] = Array.from({ length: 80 }, (_, i) => ({ conn: 1, call: i + 1, dir: i % 2 ? 'down' : 'up', text: `SELECT ${'x'.repeat(500)} | <i>` }));
    const md = decode(summarise(stats, evaluateGates(stats), previews));
    assert.match(md, /<details><summary>Traffic in short: 250 connections<\/summary>/);
    assert.equal(md.match(/^\| \d+ \| <code>127\.0\.0\.1:5\d{4}<\/code>/gm)?.length, 100);
    assert.match(md, /150 later connections left out: only the first 100 are listed\./);
    assert.match(md, /<details><summary>Payload previews<\/summary>/);
    assert.equal(md.match(/^\| \d+ \| 1 \| (request|response) \|/gm)?.length, 50);
    assert.match(md, /30 more previews left out\./);
    assert.ok(!md.includes('x'.repeat(120)), 'previews are cut short');
  });

  test('stays small whatever the size of user text', () => {
    const huge = 'n'.repeat(1_000_000);
    const stats = run(answered(5), { name: huge, target: huge, policy: { delay: huge, delayPer: huge, direction: huge, faults: Array.from({ length: 10_000 }, () => huge.slice(0, 100)) } });
    const md = summarise(stats);
    assert.ok(Buffer.byteLength(md) < 20_000, `${Buffer.byteLength(md)} bytes`);
    assert.ok(renderTerminal(stats, evaluateGates(stats)).length < 20_000);
  });

  test('draws delay and wait per call as a well-formed Mermaid xychart', () => {
    const calls = [...answered(5, 12), { waitMs: 2500, delayMs: 2400 }, ...gaveUp(3, 300)];
    const md = summarise(run(calls));
    const block = /```mermaid\n([\s\S]*?)\n```/.exec(md);
    assert.ok(block, 'a mermaid block');
    const lines = block[1].split('\n');
    assert.match(lines[0], /^%%\{init: \{"themeVariables": \{"xyChart": \{"plotColorPalette": "#[0-9a-f]{6}, #[0-9a-f]{6}"\}\}\}\}%%$/);
    assert.equal(JSON.parse(lines[0].slice(8, -3)).themeVariables.xyChart.plotColorPalette.split(', ').length, 2);
    assert.equal(lines[1], 'xychart-beta');
    assert.equal(lines[2], '    title "Delay and wait per call (ms)"');
    const labels = JSON.parse(/^ {4}x-axis "call" (\[.*\])$/.exec(lines[3])?.[1] ?? 'null') as string[];
    assert.deepEqual(labels, ['1', '2', '3', '4', '5', '6', '7', '8', '9']);
    assert.equal(lines[4], '    y-axis "ms" 0 --> 20000');
    const series = lines.slice(5).map((line) => JSON.parse(/^ {4}line (\[[\d, ]*\])$/.exec(line)?.[1] ?? 'null') as number[]);
    assert.deepEqual(series, [
      [0, 0, 0, 0, 0, 2400, 20_000, 20_000, 20_000],
      [12, 12, 12, 12, 12, 2500, 300, 300, 300],
    ]);
    assert.equal(lines.length, 7);
    assert.match(md, /🟧 delay the proxy added · 🟦 how long the app waited \(one point per call\)/);
  });

  test('many points get a numeric x-axis range instead of a label each', () => {
    const md = summarise(run(answered(500, 12)));
    assert.match(md, /\n {4}x-axis "call" 1 --> 500\n/);
  });

  test('the y-axis covers the largest delay', () => {
    const md = summarise(run([{ waitMs: 300, delayMs: 20_000, outcome: 'gave-up' }]));
    assert.match(md, /y-axis "ms" 0 --> 20000\n/);
  });
});

describe('terminal', () => {
  test('plain text with aligned columns and the same verdict', () => {
    const stats = run([...answered(37), ...Array.from({ length: 3 }, () => ({ waitMs: 20_100, delayMs: 20_000 }))], {}, 3);
    const text = renderTerminal(stats, evaluateGates(stats));
    const lines = text.split('\n');
    assert.equal(lines[0], 'FAIL  postgres: the app waited 20.1 s on 3 calls (max-wait 2 s)');
    assert.doesNotMatch(text, /\||###|<code>|&#/);
    const header = lines.findIndex((l) => l.startsWith('Outcome'));
    const rule = lines[header + 1];
    assert.match(rule, /^-+( {2}-+)+$/);
    // Right-aligned numbers end where their rule ends.
    const callsEnd = rule.indexOf(' ', rule.indexOf('-', rule.indexOf(' ')));
    for (const row of lines.slice(header + 2, header + 6)) assert.match(row.slice(0, callsEnd), /\d$/, row);
    assert.match(text, /\nGates\nGate {6}Limit {2}This run/);
    assert.match(text, /postgres: the app waited 20\.1 s on 3 of 40 calls \(max-wait 2 s\); worst: connection 2, call 38, delay 20 s/);
    assert.match(text, /\ndelay {2}[▁-█]+\nwait {3}[▁-█]+\n {7}calls 1 to 40; full height = 20\.1 s; one point per call\n/);
    assert.match(text, /\nConnections\nConnection {2}Client/);
  });

  test('strips control characters from user text', () => {
    const stats = run(answered(1), { name: 'db\u001b[31mred\u0007', maxWaitMs: null });
    const text = renderTerminal(stats, evaluateGates(stats));
    assert.ok(!text.includes('\u001b') && !text.includes('\u0007'));
    assert.match(text, /^INFO {2}db\?\[31mred\?: 1 call, 0 delayed; the app waited up to 20 ms \(no max-wait set\)$/m);
  });
});

describe('formatMs', () => {
  test('reads like a person would say it', () => {
    const cases: [number | null, string][] = [
      [0, '0 ms'],
      [0.35, '0.4 ms'],
      [3, '3 ms'],
      [310, '310 ms'],
      [999.6, '1 s'],
      [2000, '2 s'],
      [20_100, '20.1 s'],
      [59_960, '1 min'],
      [125_000, '2 min 5 s'],
      [3_780_000, '1 h 3 min'],
      [null, '-'],
      [Infinity, 'for ever'],
    ];
    for (const [ms, text] of cases) assert.equal(formatMs(ms), text, String(ms));
  });
});
