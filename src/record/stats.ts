// Timeout statistics from the engine's events: how long the app waited per call and how each call ended.
// Memory stays constant however long the proxy runs: percentiles come from HDR histograms, and every list
// (slowest calls, connection rows, timeline points, error codes) has a fixed bound.

import type { EventEmitter } from 'node:events';
import { build, type Histogram } from 'hdr-histogram-js';
import type { CallOutcome, CallRecord, CloseReason, ConnectionInfo, ProxyEvents } from '../proxy/types.js';

export const STATS_VERSION = 1;
/** Connections listed one by one in the stats file; later ones are only counted. */
export const CONNECTION_ROWS_LIMIT = 100;
/** Most points of the delay/wait timeline; neighbouring calls are merged as calls grow. */
export const TIMELINE_POINTS_LIMIT = 200;
export const SLOWEST_LIMIT = 10;
/** Distinct socket error codes counted by name; the rest are counted as `other`. */
const ERROR_CODES_LIMIT = 20;
const ERROR_MESSAGE_LIMIT = 200;

export interface StatsMeta {
  name: string;
  /** `host:port` */
  target: string;
  /** `host:port` */
  listen: string;
  seed: number;
  policy: StatsPolicy;
  /** The `max-wait` gate's limit; null when no limit is set. */
  maxWaitMs: number | null;
  startedAt: Date;
}

export interface StatsPolicy {
  delay: string;
  delayPer: string;
  direction: string;
  faults: string[];
}

export interface WaitSummary {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** One call, as listed among the slowest calls or as the worst call over the limit. */
export interface CallRef {
  conn: number;
  /** Call number over the whole proxy. */
  call: number;
  /** Call number on its connection. */
  connCall: number;
  waitMs: number;
  delayMs: number;
  outcome: CallOutcome;
}

export interface ConnectionRow {
  conn: number;
  client: string;
  openedMs: number;
  /** Null while the connection is open. */
  durationMs: number | null;
  calls: number;
  bytesUp: number;
  bytesDown: number;
  /** Null while the connection is open. */
  closeReason: CloseReason | null;
  error?: string;
}

/** Calls `fromCall`..`toCall` merged into one point; the largest delay and wait among them. */
export interface TimelinePoint {
  fromCall: number;
  toCall: number;
  /** Calls of the range that ended (or were pending at the snapshot); 0 means nothing to show. */
  calls: number;
  maxDelayMs: number;
  maxWaitMs: number;
}

export interface Stats {
  version: typeof STATS_VERSION;
  name: string;
  target: string;
  listen: string;
  seed: number;
  policy: StatsPolicy;
  startedAt: string;
  /** Null while the proxy is running. */
  endedAt: string | null;
  durationMs: number;
  connections: { total: number; open: number; failed: number; closeReasons: Partial<Record<CloseReason, number>> };
  bytes: { upstream: number; downstream: number };
  calls: {
    total: number;
    answered: number;
    gaveUp: number;
    upstreamClosed: number;
    /** Calls that ended `unfinished`, plus the pending calls when the snapshot counts them. */
    unfinished: number;
    /** Calls still waiting at the snapshot (already included in `unfinished` when the snapshot counts them). */
    pending: number;
    /** Messages the client sent without waiting for a reply (PostgreSQL Terminate, LDAP Unbind): not in `total`. */
    oneWay: number;
  };
  waitMs: { answered: WaitSummary; gaveUp: WaitSummary; upstreamClosed: WaitSummary; unfinished: WaitSummary };
  delayMs: WaitSummary;
  /** Calls the policy delayed (delayMs > 0), and how they ended. */
  delayedCalls: {
    total: number;
    answered: number;
    gaveUp: number;
    upstreamClosed: number;
    unfinished: number;
    maxWaitMs: number;
    /** Longest wait among delayed calls the app gave up on: how fast its timeout fired. */
    gaveUpMaxWaitMs: number;
  };
  maxWait: { limitMs: number | null; exceeded: number; worst: CallRef | null };
  /** Longest waits first. */
  slowest: CallRef[];
  timeline: { callsPerPoint: number; points: TimelinePoint[] };
  connectionRows: ConnectionRow[];
  connectionRowsOmitted: number;
  errors: { total: number; byCode: Record<string, number> };
  /** What the report must say about the recording itself, e.g. a traffic log that reached its cap. */
  notes?: string[];
}

export interface SnapshotOptions {
  /** When the run ended; null while it is running. */
  endedAt: Date | null;
  /**
   * Engine time (ms) at which to count the calls still waiting as `unfinished`, with their wait so far;
   * omit to leave pending calls out of the figures (they still show in `calls.pending`).
   */
  unfinishedNow?: number;
}

type OutcomeKey = 'answered' | 'gaveUp' | 'upstreamClosed' | 'unfinished';
const OUTCOME_KEY: Record<Exclude<CallOutcome, 'one-way'>, OutcomeKey> = {
  answered: 'answered',
  'gave-up': 'gaveUp',
  'upstream-closed': 'upstreamClosed',
  unfinished: 'unfinished',
};
const OUTCOME_KEYS: OutcomeKey[] = ['answered', 'gaveUp', 'upstreamClosed', 'unfinished'];

/** An exact count and maximum next to an HDR histogram of microseconds (ms resolution is too coarse for fast calls). */
class Distribution {
  private readonly histogram: Histogram = build({ bitBucketSize: 'packed' });
  count = 0;
  maxMs = 0;

  record(ms: number): void {
    this.histogram.recordValue(Math.max(0, Math.round(ms * 1000)));
    this.count += 1;
    this.maxMs = Math.max(this.maxMs, ms);
  }

  /** The summary with `extra` values added, without changing this distribution. */
  summary(extra: number[] = []): WaitSummary {
    if (extra.length === 0) return summarise(this.histogram, this.count, this.maxMs);
    const merged = build({ bitBucketSize: 'packed' });
    merged.add(this.histogram);
    let maxMs = this.maxMs;
    for (const ms of extra) {
      merged.recordValue(Math.max(0, Math.round(ms * 1000)));
      maxMs = Math.max(maxMs, ms);
    }
    return summarise(merged, this.count + extra.length, maxMs);
  }
}

function summarise(histogram: Histogram, count: number, maxMs: number): WaitSummary {
  // HDR reports the top of a value's bucket; clamping keeps p99 <= max.
  const at = (pct: number): number => (count === 0 ? 0 : Math.min(round1(histogram.getValueAtPercentile(pct) / 1000), round1(maxMs)));
  return { count, p50: at(50), p95: at(95), p99: at(99), max: round1(maxMs) };
}

interface TimelineBucket {
  calls: number;
  maxDelayMs: number;
  maxWaitMs: number;
}

/** Per-call delay and wait, merged two neighbouring buckets into one whenever the calls outgrow the limit. */
class Timeline {
  private buckets: (TimelineBucket | undefined)[] = [];
  private callsPerBucket = 1;

  constructor(private readonly firstCall: number) {}

  add(call: number, delayMs: number, waitMs: number): void {
    const index = call - this.firstCall;
    if (index < 0) return;
    while (index >= TIMELINE_POINTS_LIMIT * this.callsPerBucket) this.halve();
    const slot = Math.floor(index / this.callsPerBucket);
    this.buckets[slot] = mergeBuckets(this.buckets[slot], { calls: 1, maxDelayMs: delayMs, maxWaitMs: waitMs });
  }

  /** A copy, so pending calls can be added for a snapshot without staying in the record. */
  copy(): Timeline {
    const twin = new Timeline(this.firstCall);
    twin.buckets = this.buckets.map((b) => (b ? { ...b } : undefined));
    twin.callsPerBucket = this.callsPerBucket;
    return twin;
  }

  toJSON(): Stats['timeline'] {
    const points: TimelinePoint[] = [];
    this.buckets.forEach((bucket, slot) => {
      if (!bucket) return;
      const fromCall = this.firstCall + slot * this.callsPerBucket;
      points.push({
        fromCall,
        toCall: fromCall + this.callsPerBucket - 1,
        calls: bucket.calls,
        maxDelayMs: round1(bucket.maxDelayMs),
        maxWaitMs: round1(bucket.maxWaitMs),
      });
    });
    return { callsPerPoint: this.callsPerBucket, points };
  }

  private halve(): void {
    const merged: (TimelineBucket | undefined)[] = [];
    for (let i = 0; i < this.buckets.length; i += 2) {
      const pair = mergeBuckets(this.buckets[i], this.buckets[i + 1]);
      merged[i / 2] = pair;
    }
    this.buckets = merged;
    this.callsPerBucket *= 2;
  }
}

function mergeBuckets(a: TimelineBucket | undefined, b: TimelineBucket | undefined): TimelineBucket | undefined {
  if (!a || !b) return a ?? (b ? { ...b } : undefined);
  return { calls: a.calls + b.calls, maxDelayMs: Math.max(a.maxDelayMs, b.maxDelayMs), maxWaitMs: Math.max(a.maxWaitMs, b.maxWaitMs) };
}

/** Keeps the `limit` longest waits, longest first (ties: earlier call first). */
function insertSlowest(slowest: CallRef[], ref: CallRef): void {
  if (slowest.length === SLOWEST_LIMIT && !isSlower(ref, slowest[slowest.length - 1])) return;
  let at = slowest.length;
  while (at > 0 && isSlower(ref, slowest[at - 1])) at -= 1;
  slowest.splice(at, 0, ref);
  if (slowest.length > SLOWEST_LIMIT) slowest.pop();
}

function isSlower(a: CallRef, b: CallRef): boolean {
  return a.waitMs > b.waitMs || (a.waitMs === b.waitMs && a.call < b.call);
}

function round1(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/** The engine as far as the recorder needs it: something that emits the ProxyEvents. */
export type ProxyEventSource = Pick<EventEmitter<ProxyEvents>, 'on'>;

export class StatsRecorder {
  private readonly meta: StatsMeta;
  /** Calls waiting for their end, by call number; their records are the engine's live objects. */
  private readonly pending = new Map<number, CallRecord>();
  private highestCall = 0;
  private highestConn = 0;
  /** Calls and connections numbered up to these started before the last reset and are not counted. */
  private resetAtCall = 0;
  private oneWay = 0;
  private resetAtConn = 0;
  private openConnections = 0;

  private connectionsTotal = 0;
  private connectionsFailed = 0;
  private closeReasons: Partial<Record<CloseReason, number>> = {};
  private bytesUpstream = 0;
  private bytesDownstream = 0;
  private waits: Record<OutcomeKey, Distribution> = newWaits();
  private delays = new Distribution();
  private delayed = newDelayed();
  private exceeded = 0;
  private slowest: CallRef[] = [];
  private timeline = new Timeline(1);
  private rows = new Map<number, ConnectionRow>();
  private rowsOmitted = 0;
  private errorsTotal = 0;
  private errorsByCode: Record<string, number> = {};

  constructor(meta: StatsMeta) {
    this.meta = meta;
  }

  /** Subscribes to every event the statistics need. */
  attach(engine: ProxyEventSource): void {
    engine.on('open', (info) => this.onOpen(info));
    engine.on('data', (ev) => this.onData(ev));
    engine.on('callStart', (call) => this.onCallStart(call));
    engine.on('callEnd', (call) => this.onCallEnd(call));
    engine.on('close', (ev) => this.onClose(ev));
    engine.on('error', (ev) => this.onError(ev));
  }

  onOpen(info: ConnectionInfo): void {
    this.highestConn = Math.max(this.highestConn, info.conn);
    this.openConnections += 1;
    this.connectionsTotal += 1;
    if (this.rows.size >= CONNECTION_ROWS_LIMIT) {
      this.rowsOmitted += 1;
      return;
    }
    this.rows.set(info.conn, {
      conn: info.conn,
      client: info.client,
      openedMs: round1(info.openedMs),
      durationMs: null,
      calls: 0,
      bytesUp: 0,
      bytesDown: 0,
      closeReason: null,
    });
  }

  onData(ev: ProxyEvents['data'][0]): void {
    const row = this.rows.get(ev.conn);
    if (ev.dir === 'up') {
      this.bytesUpstream += ev.bytes;
      if (row) row.bytesUp += ev.bytes;
    } else {
      this.bytesDownstream += ev.bytes;
      if (row) row.bytesDown += ev.bytes;
    }
  }

  onCallStart(call: CallRecord): void {
    this.highestCall = Math.max(this.highestCall, call.call);
    if (call.call <= this.resetAtCall) return;
    this.pending.set(call.call, call);
    const row = this.rows.get(call.conn);
    if (row) row.calls += 1;
  }

  onCallEnd(call: CallRecord): void {
    this.pending.delete(call.call);
    if (call.call <= this.resetAtCall || call.outcome === null || call.endMs === null) return;
    if (call.outcome === 'one-way') {
      this.oneWay += 1;
      return;
    }
    const waitMs = call.endMs - call.startMs;
    const key = OUTCOME_KEY[call.outcome];
    this.waits[key].record(waitMs);
    this.delays.record(call.delayMs);
    if (call.delayMs > 0) {
      this.delayed[key] += 1;
      this.delayed.total += 1;
      this.delayed.maxWaitMs = Math.max(this.delayed.maxWaitMs, waitMs);
      if (key === 'gaveUp') this.delayed.gaveUpMaxWaitMs = Math.max(this.delayed.gaveUpMaxWaitMs, waitMs);
    }
    if (this.meta.maxWaitMs !== null && waitMs > this.meta.maxWaitMs) this.exceeded += 1;
    insertSlowest(this.slowest, callRef(call, call.outcome, waitMs));
    this.timeline.add(call.call, call.delayMs, waitMs);
  }

  onClose(ev: ProxyEvents['close'][0]): void {
    this.openConnections = Math.max(0, this.openConnections - 1);
    if (ev.conn <= this.resetAtConn) return;
    this.closeReasons[ev.reason] = (this.closeReasons[ev.reason] ?? 0) + 1;
    if (ev.reason === 'connect-failed') this.connectionsFailed += 1;
    const row = this.rows.get(ev.conn);
    if (!row) return;
    row.durationMs = round1(Math.max(0, ev.tMs - row.openedMs));
    row.closeReason = ev.reason;
    row.bytesUp = ev.bytesUp;
    row.bytesDown = ev.bytesDown;
    if (ev.error !== undefined) row.error = ev.error.slice(0, ERROR_MESSAGE_LIMIT);
  }

  onError(ev: ProxyEvents['error'][0]): void {
    this.errorsTotal += 1;
    const code = ev.code ?? 'no code';
    const key = code in this.errorsByCode || Object.keys(this.errorsByCode).length < ERROR_CODES_LIMIT ? code : 'other';
    this.errorsByCode[key] = (this.errorsByCode[key] ?? 0) + 1;
  }

  /**
   * Zeroes the statistics (control API): calls that started before the reset are not counted when they end,
   * and only connections opened afterwards get rows. Connections still open stay counted as open.
   */
  reset(): void {
    this.resetAtCall = this.highestCall;
    this.resetAtConn = this.highestConn;
    this.pending.clear();
    this.connectionsTotal = 0;
    this.connectionsFailed = 0;
    this.closeReasons = {};
    this.bytesUpstream = 0;
    this.bytesDownstream = 0;
    this.waits = newWaits();
    this.delays = new Distribution();
    this.delayed = newDelayed();
    this.exceeded = 0;
    this.oneWay = 0;
    this.slowest = [];
    this.timeline = new Timeline(this.resetAtCall + 1);
    this.rows = new Map();
    this.rowsOmitted = 0;
    this.errorsTotal = 0;
    this.errorsByCode = {};
  }

  snapshot(opts: SnapshotOptions): Stats {
    const now = opts.unfinishedNow;
    const pendingWaits: number[] = [];
    const pendingDelays: number[] = [];
    let exceeded = this.exceeded;
    const slowest = [...this.slowest];
    const timeline = now === undefined ? this.timeline : this.timeline.copy();
    const delayed = { ...this.delayed };
    if (now !== undefined) {
      for (const call of this.pending.values()) {
        const waitMs = Math.max(0, now - call.startMs);
        pendingWaits.push(waitMs);
        pendingDelays.push(call.delayMs);
        if (this.meta.maxWaitMs !== null && waitMs > this.meta.maxWaitMs) exceeded += 1;
        insertSlowest(slowest, callRef(call, 'unfinished', waitMs));
        timeline.add(call.call, call.delayMs, waitMs);
        if (call.delayMs > 0) {
          delayed.total += 1;
          delayed.unfinished += 1;
          delayed.maxWaitMs = Math.max(delayed.maxWaitMs, waitMs);
        }
      }
    }
    const waitMs = {
      answered: this.waits.answered.summary(),
      gaveUp: this.waits.gaveUp.summary(),
      upstreamClosed: this.waits.upstreamClosed.summary(),
      unfinished: this.waits.unfinished.summary(pendingWaits),
    };
    const calls = {
      total: OUTCOME_KEYS.reduce((sum, key) => sum + waitMs[key].count, 0),
      answered: waitMs.answered.count,
      gaveUp: waitMs.gaveUp.count,
      upstreamClosed: waitMs.upstreamClosed.count,
      unfinished: waitMs.unfinished.count,
      pending: this.pending.size,
      oneWay: this.oneWay,
    };
    const roundedSlowest = slowest.map((ref) => ({ ...ref, waitMs: round1(ref.waitMs), delayMs: round1(ref.delayMs) }));
    const endedAt = opts.endedAt;
    return {
      version: STATS_VERSION,
      name: this.meta.name,
      target: this.meta.target,
      listen: this.meta.listen,
      seed: this.meta.seed,
      policy: { ...this.meta.policy, faults: [...this.meta.policy.faults] },
      startedAt: this.meta.startedAt.toISOString(),
      endedAt: endedAt ? endedAt.toISOString() : null,
      durationMs: Math.max(0, (endedAt ?? new Date()).getTime() - this.meta.startedAt.getTime()),
      connections: { total: this.connectionsTotal, open: this.openConnections, failed: this.connectionsFailed, closeReasons: { ...this.closeReasons } },
      bytes: { upstream: this.bytesUpstream, downstream: this.bytesDownstream },
      calls,
      waitMs,
      delayMs: this.delays.summary(pendingDelays),
      delayedCalls: { ...delayed, maxWaitMs: round1(delayed.maxWaitMs), gaveUpMaxWaitMs: round1(delayed.gaveUpMaxWaitMs) },
      maxWait: { limitMs: this.meta.maxWaitMs, exceeded, worst: exceeded > 0 ? roundedSlowest[0] : null },
      slowest: roundedSlowest,
      timeline: timeline.toJSON(),
      connectionRows: [...this.rows.values()].map((row) => ({ ...row })),
      connectionRowsOmitted: this.rowsOmitted,
      errors: { total: this.errorsTotal, byCode: { ...this.errorsByCode } },
    };
  }

}

function callRef(call: CallRecord, outcome: CallOutcome, waitMs: number): CallRef {
  return { conn: call.conn, call: call.call, connCall: call.connCall, waitMs, delayMs: call.delayMs, outcome };
}

function newWaits(): Record<OutcomeKey, Distribution> {
  return { answered: new Distribution(), gaveUp: new Distribution(), upstreamClosed: new Distribution(), unfinished: new Distribution() };
}

function newDelayed(): Stats['delayedCalls'] {
  return { total: 0, answered: 0, gaveUp: 0, upstreamClosed: 0, unfinished: 0, maxWaitMs: 0, gaveUpMaxWaitMs: 0 };
}
