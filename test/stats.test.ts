// The statistics recorder: synthetic calls for exact figures, and a real engine for the events it rests on.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { ProxyEngine } from '../src/proxy/engine.js';
import type { CallOutcome, CallRecord, Planner } from '../src/proxy/types.js';
import { CONNECTION_ROWS_LIMIT, SLOWEST_LIMIT, StatsRecorder, TIMELINE_POINTS_LIMIT, type StatsMeta } from '../src/record/stats.js';
import { evaluateGates } from '../src/record/gates.js';
import { renderSummaryMarkdown } from '../src/render/summary.js';
import { renderTerminal } from '../src/render/terminal.js';

const STARTED = new Date('2024-05-01T10:00:00.000Z');

function meta(over: Partial<StatsMeta> = {}): StatsMeta {
  return {
    name: 'postgres',
    target: '127.0.0.1:5432',
    listen: '127.0.0.1:15432',
    seed: 123,
    policy: { delay: 'fixed(300ms)', delayPer: 'call', direction: 'upstream', faults: [] },
    maxWaitMs: null,
    startedAt: STARTED,
    ...over,
  };
}

interface CallSpec {
  conn?: number;
  connCall?: number;
  startMs?: number;
  waitMs: number;
  delayMs?: number;
  outcome?: CallOutcome;
}

/** Feeds one finished call (start, then end) and returns its record. */
function feed(rec: StatsRecorder, call: number, spec: CallSpec): CallRecord {
  const startMs = spec.startMs ?? call * 10;
  const record: CallRecord = {
    conn: spec.conn ?? 1,
    call,
    connCall: spec.connCall ?? call,
    startMs,
    endMs: null,
    delayMs: 0,
    outcome: null,
    bytesUp: 10,
    bytesDown: 0,
  };
  rec.onCallStart(record);
  record.endMs = startMs + spec.waitMs;
  record.delayMs = spec.delayMs ?? 0;
  record.outcome = spec.outcome ?? 'answered';
  rec.onCallEnd(record);
  return record;
}

/** Within HDR's 3 significant digits (plus the 0.1 ms rounding of the stats file). */
function near(actual: number, expected: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= expected * 0.002 + 0.1, `${what}: ${actual} is not ~${expected}`);
}

describe('StatsRecorder with synthetic calls', () => {
  test('counts outcomes and computes per-outcome percentiles', () => {
    const rec = new StatsRecorder(meta());
    let n = 0;
    for (let i = 1; i <= 100; i++) feed(rec, ++n, { waitMs: i });
    for (let i = 0; i < 10; i++) feed(rec, ++n, { waitMs: 300 + i, delayMs: 5000, outcome: 'gave-up' });
    for (let i = 0; i < 5; i++) feed(rec, ++n, { waitMs: 40, outcome: 'upstream-closed' });
    feed(rec, n + 1, { waitMs: 7000, delayMs: 7000, outcome: 'unfinished' });
    const s = rec.snapshot({ endedAt: new Date(STARTED.getTime() + 60_000) });

    assert.deepEqual(s.calls, { total: 116, answered: 100, gaveUp: 10, upstreamClosed: 5, unfinished: 1, pending: 0, oneWay: 0 });
    assert.equal(s.waitMs.answered.count, 100);
    near(s.waitMs.answered.p50, 50, 'answered p50');
    near(s.waitMs.answered.p95, 95, 'answered p95');
    near(s.waitMs.answered.p99, 99, 'answered p99');
    assert.equal(s.waitMs.answered.max, 100);
    near(s.waitMs.gaveUp.p50, 304, 'gave-up p50');
    assert.equal(s.waitMs.gaveUp.max, 309);
    assert.deepEqual(s.waitMs.upstreamClosed, { count: 5, p50: 40, p95: 40, p99: 40, max: 40 });
    assert.equal(s.waitMs.unfinished.max, 7000);
    assert.ok(s.waitMs.answered.p99 <= s.waitMs.answered.max);

    assert.equal(s.delayMs.count, 116);
    assert.equal(s.delayMs.p50, 0);
    assert.equal(s.delayMs.max, 7000);
    assert.deepEqual(s.delayedCalls, { total: 11, answered: 0, gaveUp: 10, upstreamClosed: 0, unfinished: 1, maxWaitMs: 7000, gaveUpMaxWaitMs: 309 });

    assert.equal(s.version, 1);
    assert.equal(s.startedAt, '2024-05-01T10:00:00.000Z');
    assert.equal(s.endedAt, '2024-05-01T10:01:00.000Z');
    assert.equal(s.durationMs, 60_000);
    assert.deepEqual(s.policy, { delay: 'fixed(300ms)', delayPer: 'call', direction: 'upstream', faults: [] });
    assert.deepEqual(s.maxWait, { limitMs: null, exceeded: 0, worst: null });
    assert.deepEqual(JSON.parse(JSON.stringify(s)), s, 'the stats are plain JSON');
  });

  test('lists the slowest calls, longest first, ties in call order', () => {
    const rec = new StatsRecorder(meta());
    const waits = [5, 90, 20, 90, 70, 1, 300, 45, 90, 8, 60, 2, 33, 250, 12];
    waits.forEach((waitMs, i) => feed(rec, i + 1, { waitMs, conn: 1 + (i % 3), connCall: 1 + Math.floor(i / 3), delayMs: waitMs - 1 }));
    const s = rec.snapshot({ endedAt: null });
    assert.equal(s.slowest.length, SLOWEST_LIMIT);
    assert.deepEqual(
      s.slowest.map((c) => [c.call, c.waitMs]),
      [[7, 300], [14, 250], [2, 90], [4, 90], [9, 90], [5, 70], [11, 60], [8, 45], [13, 33], [3, 20]],
    );
    assert.deepEqual(s.slowest[0], { conn: 1, call: 7, connCall: 3, waitMs: 300, delayMs: 299, outcome: 'answered' });
    assert.equal(s.endedAt, null);
  });

  test('counts calls over max-wait: late answers, late give-ups, upstream closes; not quick give-ups', () => {
    const rec = new StatsRecorder(meta({ maxWaitMs: 2000 }));
    feed(rec, 1, { waitMs: 100 });
    feed(rec, 2, { waitMs: 2500, delayMs: 2400, conn: 2, connCall: 1 });
    feed(rec, 3, { waitMs: 1900, delayMs: 20_000, outcome: 'gave-up' });
    feed(rec, 4, { waitMs: 20_100, delayMs: 20_000, outcome: 'gave-up', conn: 4, connCall: 2 });
    feed(rec, 5, { waitMs: 3000, outcome: 'upstream-closed' });
    feed(rec, 6, { waitMs: 2000 });
    const s = rec.snapshot({ endedAt: null });
    assert.equal(s.maxWait.limitMs, 2000);
    assert.equal(s.maxWait.exceeded, 3);
    assert.deepEqual(s.maxWait.worst, { conn: 4, call: 4, connCall: 2, waitMs: 20_100, delayMs: 20_000, outcome: 'gave-up' });
  });

  test('counts pending calls as unfinished only when asked, with their wait so far', () => {
    const rec = new StatsRecorder(meta({ maxWaitMs: 1000 }));
    feed(rec, 1, { waitMs: 50 });
    const pending: CallRecord = { conn: 2, call: 2, connCall: 1, startMs: 1000, endMs: null, delayMs: 0, outcome: null, bytesUp: 5, bytesDown: 0 };
    rec.onCallStart(pending);

    const without = rec.snapshot({ endedAt: null });
    assert.equal(without.calls.pending, 1);
    assert.equal(without.calls.unfinished, 0);
    assert.equal(without.calls.total, 1);
    assert.equal(without.maxWait.exceeded, 0);

    const withNow = rec.snapshot({ endedAt: null, unfinishedNow: 3500 });
    assert.equal(withNow.calls.pending, 1);
    assert.equal(withNow.calls.unfinished, 1);
    assert.equal(withNow.calls.total, 2);
    assert.equal(withNow.waitMs.unfinished.max, 2500);
    assert.equal(withNow.maxWait.exceeded, 1);
    assert.deepEqual(withNow.maxWait.worst, { conn: 2, call: 2, connCall: 1, waitMs: 2500, delayMs: 0, outcome: 'unfinished' });
    assert.deepEqual(withNow.timeline.points.map((p) => p.maxWaitMs), [50, 2500]);

    // The snapshot must not have changed the record.
    assert.deepEqual(rec.snapshot({ endedAt: null }).calls, without.calls);
    pending.endMs = 4000;
    pending.outcome = 'answered';
    pending.delayMs = 2900;
    rec.onCallEnd(pending);
    const after = rec.snapshot({ endedAt: null, unfinishedNow: 5000 });
    assert.deepEqual(after.calls, { total: 2, answered: 2, gaveUp: 0, upstreamClosed: 0, unfinished: 0, pending: 0, oneWay: 0 });
  });

  test('keeps the timeline within its point limit, merging neighbours by their largest values', () => {
    const rec = new StatsRecorder(meta());
    for (let call = 1; call <= 100_000; call++) {
      const spike = call === 54_321;
      feed(rec, call, { waitMs: spike ? 9000 : 5, delayMs: spike ? 8800 : call % 7 === 0 ? 100 : 0 });
    }
    const { timeline } = rec.snapshot({ endedAt: null });
    assert.ok(timeline.points.length <= TIMELINE_POINTS_LIMIT && timeline.points.length > TIMELINE_POINTS_LIMIT / 2, `${timeline.points.length} points`);
    assert.equal(timeline.callsPerPoint, 512);
    assert.equal(timeline.points[0].fromCall, 1);
    assert.equal(timeline.points.at(-1)?.toCall, 196 * 512);
    assert.equal(timeline.points.reduce((sum, p) => sum + p.calls, 0), 100_000);
    const withSpike = timeline.points.filter((p) => p.maxWaitMs === 9000);
    assert.equal(withSpike.length, 1);
    assert.ok(withSpike[0].fromCall <= 54_321 && 54_321 <= withSpike[0].toCall);
    assert.equal(withSpike[0].maxDelayMs, 8800);
    assert.ok(timeline.points.filter((p) => p !== withSpike[0]).every((p) => p.maxWaitMs === 5 && p.maxDelayMs === 100));
  });

  test('timeline: one point per call while calls are few, in call order even when they end out of order', () => {
    const rec = new StatsRecorder(meta());
    feed(rec, 3, { waitMs: 30, delayMs: 3 });
    feed(rec, 1, { waitMs: 10, delayMs: 1 });
    feed(rec, 2, { waitMs: 20, delayMs: 2 });
    const { timeline } = rec.snapshot({ endedAt: null });
    assert.deepEqual(timeline, {
      callsPerPoint: 1,
      points: [
        { fromCall: 1, toCall: 1, calls: 1, maxDelayMs: 1, maxWaitMs: 10 },
        { fromCall: 2, toCall: 2, calls: 1, maxDelayMs: 2, maxWaitMs: 20 },
        { fromCall: 3, toCall: 3, calls: 1, maxDelayMs: 3, maxWaitMs: 30 },
      ],
    });
  });

  test('connections: rows for the first ones, counts for all, bytes from data and close events', () => {
    const rec = new StatsRecorder(meta());
    const total = CONNECTION_ROWS_LIMIT + 50;
    for (let conn = 1; conn <= total; conn++) rec.onOpen({ conn, client: `127.0.0.1:${40000 + conn}`, openedMs: conn * 2 });
    rec.onData({ conn: 1, dir: 'up', bytes: 11, delayMs: 0, tMs: 5, chunk: Buffer.alloc(11), call: 1 });
    rec.onData({ conn: 1, dir: 'down', bytes: 40, delayMs: 0, tMs: 6, chunk: Buffer.alloc(40), call: 1 });
    rec.onData({ conn: total, dir: 'up', bytes: 7, delayMs: 0, tMs: 7, chunk: Buffer.alloc(7), call: 2 });
    feed(rec, 1, { conn: 1, waitMs: 3 });
    rec.onClose({ conn: 1, reason: 'client-reset', tMs: 502, bytesUp: 11, bytesDown: 40, calls: 1, error: 'read ECONNRESET' });
    rec.onClose({ conn: 2, reason: 'connect-failed', tMs: 10, bytesUp: 0, bytesDown: 0, calls: 0, error: 'connect ECONNREFUSED' });
    rec.onClose({ conn: total, reason: 'closed', tMs: 900, bytesUp: 7, bytesDown: 0, calls: 0 });

    const s = rec.snapshot({ endedAt: null });
    assert.deepEqual(s.connections, { total, open: total - 3, failed: 1, closeReasons: { 'client-reset': 1, 'connect-failed': 1, closed: 1 } });
    assert.deepEqual(s.bytes, { upstream: 18, downstream: 40 });
    assert.equal(s.connectionRows.length, CONNECTION_ROWS_LIMIT);
    assert.equal(s.connectionRowsOmitted, 50);
    assert.deepEqual(s.connectionRows[0], {
      conn: 1,
      client: '127.0.0.1:40001',
      openedMs: 2,
      durationMs: 500,
      calls: 1,
      bytesUp: 11,
      bytesDown: 40,
      closeReason: 'client-reset',
      error: 'read ECONNRESET',
    });
    assert.deepEqual(s.connectionRows[2], { conn: 3, client: '127.0.0.1:40003', openedMs: 6, durationMs: null, calls: 0, bytesUp: 0, bytesDown: 0, closeReason: null });
  });

  test('socket errors are counted by code, with a bounded number of codes', () => {
    const rec = new StatsRecorder(meta());
    rec.onError({ conn: 1, side: 'client', message: 'read ECONNRESET', code: 'ECONNRESET', tMs: 1 });
    rec.onError({ conn: 2, side: 'client', message: 'read ECONNRESET', code: 'ECONNRESET', tMs: 2 });
    rec.onError({ conn: 3, side: 'upstream', message: 'odd' , tMs: 3 });
    for (let i = 0; i < 30; i++) rec.onError({ conn: 4, side: 'upstream', message: 'x', code: `E${i}`, tMs: 4 });
    const { errors } = rec.snapshot({ endedAt: null });
    assert.equal(errors.total, 33);
    assert.equal(errors.byCode.ECONNRESET, 2);
    assert.equal(errors.byCode['no code'], 1);
    assert.equal(Object.keys(errors.byCode).length, 21);
    assert.equal(errors.byCode.other, 12);
  });

  test('reset zeroes the figures and ignores calls that started before it', () => {
    const rec = new StatsRecorder(meta({ maxWaitMs: 100 }));
    rec.onOpen({ conn: 1, client: 'a:1', openedMs: 0 });
    feed(rec, 1, { waitMs: 500, delayMs: 400 });
    const straddling: CallRecord = { conn: 1, call: 2, connCall: 2, startMs: 600, endMs: null, delayMs: 0, outcome: null, bytesUp: 1, bytesDown: 0 };
    rec.onCallStart(straddling);
    rec.onError({ conn: 1, side: 'client', message: 'x', code: 'EPIPE', tMs: 1 });

    rec.reset();
    straddling.endMs = 900;
    straddling.outcome = 'answered';
    rec.onCallEnd(straddling);
    rec.onClose({ conn: 1, reason: 'closed', tMs: 1000, bytesUp: 2, bytesDown: 2, calls: 2 });
    rec.onOpen({ conn: 2, client: 'b:2', openedMs: 1100 });
    feed(rec, 3, { waitMs: 20, conn: 2, connCall: 1 });

    const s = rec.snapshot({ endedAt: null, unfinishedNow: 5000 });
    assert.deepEqual(s.calls, { total: 1, answered: 1, gaveUp: 0, upstreamClosed: 0, unfinished: 0, pending: 0, oneWay: 0 });
    assert.deepEqual(s.maxWait, { limitMs: 100, exceeded: 0, worst: null });
    assert.deepEqual(s.connections, { total: 1, open: 1, failed: 0, closeReasons: {} });
    assert.deepEqual(s.connectionRows.map((r) => r.conn), [2]);
    assert.equal(s.errors.total, 0);
    assert.equal(s.delayedCalls.total, 0);
    assert.deepEqual(s.slowest.map((c) => c.call), [3]);
    assert.deepEqual(s.timeline.points, [{ fromCall: 3, toCall: 3, calls: 1, maxDelayMs: 0, maxWaitMs: 20 }]);
  });

  test('100 000 calls: stats and summary stay small and render fast', () => {
    const rec = new StatsRecorder(meta({ maxWaitMs: 2000 }));
    for (let conn = 1; conn <= 1000; conn++) rec.onOpen({ conn, client: `10.0.0.${conn % 250}:${30000 + conn}`, openedMs: conn });
    for (let call = 1; call <= 100_000; call++) {
      const delayed = call % 5 === 0;
      feed(rec, call, {
        conn: 1 + (call % 1000),
        connCall: Math.ceil(call / 1000),
        waitMs: delayed ? 250 + (call % 97) : 1 + (call % 13) / 10,
        delayMs: delayed ? 3000 : 0,
        outcome: delayed ? 'gave-up' : 'answered',
      });
    }
    const t0 = performance.now();
    const stats = rec.snapshot({ endedAt: new Date(STARTED.getTime() + 600_000) });
    const gates = evaluateGates(stats);
    const markdown = renderSummaryMarkdown(stats, gates);
    const text = renderTerminal(stats, gates);
    const elapsed = performance.now() - t0;
    const json = JSON.stringify(stats);
    assert.ok(elapsed < 1000, `snapshot and rendering took ${elapsed.toFixed(0)} ms`);
    assert.ok(json.length < 200_000, `stats JSON is ${json.length} bytes`);
    assert.ok(Buffer.byteLength(markdown) < 200_000, `markdown is ${Buffer.byteLength(markdown)} bytes`);
    assert.ok(text.length < 200_000, `terminal text is ${text.length} chars`);
    assert.equal(stats.calls.total, 100_000);
    assert.equal(stats.delayedCalls.gaveUp, 20_000);
    assert.equal(stats.maxWait.exceeded, 0);
    assert.match(markdown, /^### ✅ postgres: the app gave up within 346 ms on all 20,000 delayed calls$/m);
    assert.match(markdown, /900 later connections left out: only the first 100 are listed\./);
  });
});

describe('StatsRecorder on a real engine', () => {
  test('records answered, gave-up, upstream-closed and unfinished calls', { timeout: 20_000 }, async () => {
    // Answers ANSWER, closes on CLOSE, never answers HANG.
    const upstreamSockets = new Set<net.Socket>();
    const received: string[] = [];
    const server = net.createServer((socket) => {
      upstreamSockets.add(socket);
      socket.on('close', () => upstreamSockets.delete(socket));
      socket.on('error', () => {});
      socket.on('data', (buf) => {
        const line = buf.toString().trim();
        received.push(line);
        if (line === 'ANSWER') socket.write('OK\n');
        if (line === 'CLOSE') socket.destroy();
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const upstreamPort = (server.address() as net.AddressInfo).port;

    const planner: Planner = () => ({ up: { hold: () => 300 }, down: { hold: () => 0 } });
    const engine = new ProxyEngine({ target: { host: '127.0.0.1', port: upstreamPort }, listenHost: '127.0.0.1', listenPort: 0, planner });
    const { port } = await engine.listen();
    const rec = new StatsRecorder(meta({ target: `127.0.0.1:${upstreamPort}`, listen: `127.0.0.1:${port}`, maxWaitMs: 200 }));
    rec.attach(engine);
    const clients: net.Socket[] = [];
    const connect = async (): Promise<net.Socket> => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.on('error', () => {});
      clients.push(socket);
      await once(socket, 'connect');
      return socket;
    };
    try {
      const answered = await connect();
      const answer = once(answered, 'data');
      answered.write('ANSWER\n');
      const gaveUp = await connect();
      gaveUp.write('ANSWER\n');
      setTimeout(() => gaveUp.destroy(), 100);
      const upstreamCloses = await connect();
      upstreamCloses.write('CLOSE\n');
      const hangs = await connect();
      hangs.write('HANG\n');

      assert.equal(String((await answer)[0]), 'OK\n');
      answered.end();
      const deadline = Date.now() + 10_000;
      while (!received.includes('HANG') || !received.includes('CLOSE')) {
        assert.ok(Date.now() < deadline, `upstream got only ${received.join(',')}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await new Promise((resolve) => setTimeout(resolve, 100));

      const running = rec.snapshot({ endedAt: null, unfinishedNow: engine.elapsedMs() });
      assert.equal(running.endedAt, null);
      assert.equal(running.calls.pending, 1);
      assert.equal(running.calls.unfinished, 1);

      await engine.close();
      const s = rec.snapshot({ endedAt: new Date() });

      assert.deepEqual(s.calls, { total: 4, answered: 1, gaveUp: 1, upstreamClosed: 1, unfinished: 1, pending: 0, oneWay: 0 });
      const wait = (label: string, v: number, min: number, max: number) => assert.ok(v >= min && v < max, `${label} ${v} not in [${min}, ${max})`);
      wait('answered wait', s.waitMs.answered.max, 280, 1500);
      wait('gave-up wait', s.waitMs.gaveUp.max, 80, 290);
      wait('upstream-closed wait', s.waitMs.upstreamClosed.max, 280, 1500);
      wait('unfinished wait', s.waitMs.unfinished.max, 380, 12_000);
      assert.equal(s.waitMs.answered.count, 1);
      assert.equal(s.waitMs.answered.p50, s.waitMs.answered.max);

      // The gave-up call's request was still held when the client left; the others met the 300 ms hold.
      const byOutcome = new Map(s.slowest.map((c) => [c.outcome, c]));
      assert.equal(s.slowest.length, 4);
      assert.equal(byOutcome.get('answered')?.conn, 1);
      assert.equal(byOutcome.get('gave-up')?.conn, 2);
      assert.equal(byOutcome.get('upstream-closed')?.conn, 3);
      assert.equal(byOutcome.get('unfinished')?.conn, 4);
      for (const outcome of ['answered', 'upstream-closed', 'unfinished'] as const) assert.equal(byOutcome.get(outcome)?.delayMs, 300, outcome);
      assert.ok(s.delayedCalls.total >= 3);
      assert.equal(s.delayMs.max, 300);

      assert.equal(s.maxWait.exceeded, 3, 'all but the quick give-up waited over 200 ms');
      assert.equal(s.maxWait.worst?.outcome, 'unfinished');

      assert.deepEqual({ total: s.connections.total, open: s.connections.open, failed: s.connections.failed }, { total: 4, open: 0, failed: 0 });
      // The given-up request may still reach the upstream (and its answer be written) after the client left.
      wait('bytes downstream', s.bytes.downstream, 3, 7);
      wait('bytes upstream', s.bytes.upstream, 18, 27);
      assert.equal(s.connectionRows.length, 4);
      assert.equal(s.bytes.upstream, s.connectionRows.reduce((sum, r) => sum + r.bytesUp, 0));
      assert.equal(s.bytes.downstream, s.connectionRows.reduce((sum, r) => sum + r.bytesDown, 0));
      assert.deepEqual(s.connectionRows.map((r) => r.calls), [1, 1, 1, 1]);
      assert.equal(s.connectionRows[0].bytesDown, 3);
      assert.equal(s.connectionRows[3].closeReason, 'shutdown');
      assert.ok(s.connectionRows.every((r) => r.closeReason !== null && r.durationMs !== null && r.durationMs >= 0));
      assert.deepEqual(s.timeline.points.map((p) => p.fromCall), [1, 2, 3, 4]);
      assert.equal(s.timeline.callsPerPoint, 1);
    } finally {
      for (const socket of clients) socket.destroy();
      await engine.close();
      for (const socket of upstreamSockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
