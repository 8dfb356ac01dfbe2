// The job summary of a long run: 100 000 synthetic calls fed to the StatsRecorder the daemon uses,
// then the summary the post step writes, with every section filled (gates, baseline, timeline,
// slowest calls, connection rows, 50 payload previews).
import { evaluateGates } from '../../src/record/gates.js';
import { StatsRecorder, type Stats } from '../../src/record/stats.js';
import { createRng } from '../../src/policy/rng.js';
import type { CallOutcome, CallRecord } from '../../src/proxy/types.js';
import { PAYLOAD_PREVIEWS_LIMIT, PAYLOAD_PREVIEW_CHARS, type PayloadPreview } from '../../src/render/report.js';
import { renderSummaryMarkdown } from '../../src/render/summary.js';

export interface SummaryResult {
  calls: number;
  connections: number;
  recordMs: number;
  snapshotMs: number;
  renderMs: number;
  summaryBytes: number;
  statsFileBytes: number;
}

function millis(since: bigint): number {
  return Number(process.hrtime.bigint() - since) / 1e6;
}

/** A run of `connections` connections with `callsPerConnection` calls each; a lognormal-ish delay, some timeouts. */
function record(seed: number, connections: number, callsPerConnection: number): StatsRecorder {
  const rng = createRng(seed);
  const recorder = new StatsRecorder({
    name: 'postgres',
    target: 'localhost:5432',
    listen: '127.0.0.1:40000',
    seed,
    policy: { delay: 'lognormal(median=20ms, p99=2s)', delayPer: 'call', direction: 'upstream', faults: ['reset after=30s probability=5%'] },
    maxWaitMs: 2000,
    startedAt: new Date('2025-01-01T00:00:00Z'),
  });
  let now = 0;
  let call = 0;
  for (let conn = 1; conn <= connections; conn += 1) {
    recorder.onOpen({ conn, client: `127.0.0.1:${30000 + conn}`, openedMs: now });
    for (let connCall = 1; connCall <= callsPerConnection; connCall += 1) {
      call += 1;
      const delayMs = 20 * Math.exp(1.98 * rng.normal());
      const roll = rng.next();
      const outcome: CallOutcome = delayMs > 1000 ? 'gave-up' : roll < 0.003 ? 'upstream-closed' : 'answered';
      const waitMs = outcome === 'gave-up' ? 1000 + rng.next() * 5 : delayMs + 0.2 + rng.next();
      const record: CallRecord = { conn, call, connCall, startMs: now, endMs: null, delayMs, outcome: null, bytesUp: 64, bytesDown: 0 };
      recorder.onCallStart(record);
      recorder.onData({ conn, dir: 'up', bytes: 64, delayMs, tMs: now + delayMs, chunk: Buffer.alloc(0), call });
      now += waitMs;
      recorder.onData({ conn, dir: 'down', bytes: 512, delayMs: 0, tMs: now, chunk: Buffer.alloc(0), call });
      recorder.onCallEnd({ ...record, endMs: now, outcome, bytesDown: 512 });
    }
    if (conn % 100 === 0) recorder.onError({ conn, side: 'upstream', message: 'read ECONNRESET', code: 'ECONNRESET', tMs: now });
    recorder.onClose({ conn, reason: conn % 20 === 0 ? 'fault-reset' : 'closed', tMs: now, bytesUp: 64 * callsPerConnection, bytesDown: 512 * callsPerConnection, calls: callsPerConnection });
  }
  return recorder;
}

function previews(): PayloadPreview[] {
  const text = 'SELECT id, name, email FROM accounts WHERE id = $1 '.repeat(4).slice(0, PAYLOAD_PREVIEW_CHARS);
  return Array.from({ length: PAYLOAD_PREVIEWS_LIMIT }, (_, i) => ({ conn: i + 1, call: i * 100 + 1, dir: i % 2 ? 'down' : 'up', text }));
}

export function summaryOf100kCalls(): SummaryResult {
  const connections = 1000;
  const perConnection = 100;
  const baseline: Stats = record(2, connections, perConnection).snapshot({ endedAt: new Date('2025-01-01T00:10:00Z') });
  const started = process.hrtime.bigint();
  const recorder = record(1, connections, perConnection);
  const recordMs = millis(started);
  const snapshotStart = process.hrtime.bigint();
  const stats = recorder.snapshot({ endedAt: new Date('2025-01-01T00:10:00Z') });
  const snapshotMs = millis(snapshotStart);
  const renderStart = process.hrtime.bigint();
  const gates = evaluateGates(stats, { baseline: { path: 'baseline/stats.json', stats: baseline }, maxRegressionPct: 20 });
  const markdown = renderSummaryMarkdown(stats, gates, { payloadPreviews: previews() });
  const renderMs = millis(renderStart);
  if (stats.calls.total !== connections * perConnection) throw new Error(`recorded ${stats.calls.total} calls`);
  return {
    calls: stats.calls.total,
    connections,
    recordMs,
    snapshotMs,
    renderMs,
    summaryBytes: Buffer.byteLength(markdown),
    statsFileBytes: Buffer.byteLength(JSON.stringify(stats, null, 2)),
  };
}
