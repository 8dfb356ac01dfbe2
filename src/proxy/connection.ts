// One proxied connection: the client socket, the upstream socket, a lane each way,
// and the bookkeeping of calls (request/response turns) that the statistics rest on.
import net from 'node:net';
import { Lane, type LaneHost } from './lane.js';
import type {
  CallOutcome,
  CallRecord,
  CloseReason,
  ConnectionPlan,
  Direction,
  HoldContext,
  Target,
  TimedAction,
} from './types.js';

/** A client FIN this soon after a call's first byte means it sent the call without waiting for a reply. */
export const ONE_WAY_MS = 5;

/** What a connection needs from the engine that owns it. */
export interface ConnectionHost {
  now(): number;
  paused(): boolean;
  target(): Target;
  highWaterMark: number;
  connectTimeoutMs: number;
  nextCallNumber(): number;
  emitCallStart(call: CallRecord): void;
  emitCallEnd(call: CallRecord): void;
  emitData(conn: number, dir: Direction, piece: Buffer, heldMs: number, call: number | null): void;
  emitError(conn: number, side: 'client' | 'upstream', err: NodeJS.ErrnoException): void;
  connectFailed(): void;
  heldChanged(delta: number, laneHeld: number): void;
  closed(conn: Connection, reason: CloseReason, error?: string): void;
}

/** Call bookkeeping the engine does not publish. */
interface CallState {
  record: CallRecord;
  /** A response chunk for this call has arrived from upstream (it may still be held). */
  responseArrived: boolean;
  upHeld: number;
  downHeld: number;
}

export class Connection {
  private upstream: net.Socket | null = null;
  private readonly up: Lane;
  private down: Lane | null = null;
  private pending: CallState | null = null;
  private last: CallState | null = null;
  private connCalls = 0;
  private readonly timers = new Set<NodeJS.Timeout>();
  private clientClosed = false;
  private upstreamClosed = false;
  private done = false;
  /** Set when the proxy itself decides how the connection ends (faults, shutdown). */
  private forcedReason: CloseReason | null = null;
  private readonly laneHost: LaneHost;
  private errorMessage: string | undefined;
  /** The upstream sent its FIN: nothing more can answer a call. */
  private upstreamEnded = false;

  constructor(
    readonly id: number,
    private readonly client: net.Socket,
    private readonly plan: ConnectionPlan,
    private readonly host: ConnectionHost,
  ) {
    this.laneHost = {
      now: () => host.now(),
      paused: () => host.paused(),
      forwarded: (dir, piece, heldMs, tag) => this.forwarded(dir, piece, heldMs, tag as CallState | null),
      limitReached: () => this.closeCleanly('limit-data'),
      heldChanged: (delta, laneHeld) => host.heldChanged(delta, laneHeld),
    };
    this.up = new Lane('up', client, plan.up, this.laneHost, host.highWaterMark);
  }

  start(): void {
    const client = this.client;
    client.setNoDelay(true);
    client.on('data', (buf: Buffer) => this.clientData(buf));
    client.on('end', () => {
      this.clientEnded();
    });
    client.on('error', (err: NodeJS.ErrnoException) => {
      this.host.emitError(this.id, 'client', err);
      this.failed('client-reset', err.message);
    });
    client.on('close', () => {
      this.clientClosed = true;
      if (this.pending) this.endCall(this.pending, this.clientLeft(this.pending));
      this.maybeDone();
    });

    if (this.plan.refuse) {
      this.forcedReason = 'refused';
      reset(client);
      return;
    }
    for (const action of this.plan.timed ?? []) this.schedule(action);
    const connectDelay = this.plan.connectDelayMs ?? 0;
    if (connectDelay > 0) this.later(connectDelay, () => this.connectUpstream());
    else this.connectUpstream();
  }

  private connectUpstream(): void {
    if (this.done || this.forcedReason) return;
    const { host, port } = this.host.target();
    // net.connect resolves the host name each time, so `postgres:5432` follows the job's DNS.
    const upstream = net.connect({ host, port, allowHalfOpen: true });
    this.upstream = upstream;
    upstream.setNoDelay(true);
    const connectTimer = this.later(this.host.connectTimeoutMs, () => {
      upstream.destroy(Object.assign(new Error(`connect to ${host}:${port} timed out`), { code: 'ETIMEDOUT' }));
    });
    let connected = false;
    upstream.once('connect', () => {
      connected = true;
      this.clearLater(connectTimer);
      const down = new Lane('down', upstream, this.plan.down, this.laneHost, this.host.highWaterMark);
      this.down = down;
      upstream.on('data', (buf: Buffer) => this.upstreamData(buf));
      down.setDestination(this.client);
      this.up.setDestination(upstream);
    });
    upstream.on('end', () => {
      this.upstreamEnded = true;
      if (this.pending && !this.pending.responseArrived) this.endCall(this.pending, 'upstream-closed');
      this.down?.end();
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      this.host.emitError(this.id, 'upstream', err);
      if (!connected) {
        this.host.connectFailed();
        this.failed('connect-failed', err.message);
      } else {
        this.failed('upstream-reset', err.message);
      }
    });
    upstream.on('close', () => {
      this.upstreamClosed = true;
      if (this.pending) this.endCall(this.pending, 'upstream-closed');
      this.maybeDone();
    });
  }

  private clientData(buf: Buffer): void {
    const now = this.host.now();
    let call = this.pending;
    let unitStart = false;
    if (!call) {
      this.connCalls += 1;
      call = {
        record: {
          conn: this.id,
          call: this.host.nextCallNumber(),
          connCall: this.connCalls,
          startMs: now,
          endMs: null,
          delayMs: 0,
          outcome: null,
          bytesUp: 0,
          bytesDown: 0,
        },
        responseArrived: false,
        upHeld: 0,
        downHeld: 0,
      };
      this.pending = call;
      this.last = call;
      unitStart = true;
      this.host.emitCallStart(call.record);
      const actions = this.plan.onCallStart?.(call.record);
      for (const action of actions ?? []) this.schedule(action);
    }
    call.record.bytesUp += buf.length;
    const hold = this.up.push(buf, this.context('up', call, unitStart, buf.length, now), call);
    if (unitStart) this.setHold(call, 'up', hold);
  }

  private upstreamData(buf: Buffer): void {
    const now = this.host.now();
    // A chunk answers the pending call; otherwise it continues the last response (or is a greeting).
    const call = this.pending ?? this.last;
    const unitStart = this.pending !== null && !this.pending.responseArrived;
    if (this.pending) this.pending.responseArrived = true;
    const hold = this.down!.push(buf, this.context('down', call, unitStart, buf.length, now), call);
    if (unitStart && call) this.setHold(call, 'down', hold);
  }

  /** Publish the policy's hold on the record at once, so live statistics see pending calls as delayed. */
  private setHold(call: CallState, dir: Direction, hold: number): void {
    if (dir === 'up') call.upHeld = hold;
    else call.downHeld = hold;
    const total = call.upHeld + call.downHeld;
    if (Number.isFinite(total)) call.record.delayMs = total;
  }

  private context(dir: Direction, call: CallState | null, unitStart: boolean, bytes: number, nowMs: number): HoldContext {
    return {
      conn: this.id,
      dir,
      call: call ? call.record.call : null,
      connCall: call ? call.record.connCall : null,
      unitStart,
      bytes,
      nowMs,
    };
  }

  private forwarded(dir: Direction, piece: Buffer, heldMs: number, call: CallState | null): void {
    if (dir === 'down' && call) {
      call.record.bytesDown += piece.length;
      if (call === this.pending) this.endCall(call, 'answered');
    }
    this.host.emitData(this.id, dir, piece, heldMs, call ? call.record.call : null);
  }

  private clientEnded(): void {
    const call = this.pending;
    if (call) {
      // A client that closes while waiting has given up, even if it could still read (half-close):
      // a pool that times out just closes its socket. A client that closes right after its last bytes
      // never waited at all (PostgreSQL Terminate, LDAP Unbind): that message was one-way. Counted from the
      // call's start, so a farewell sent after a timeout (joining the slow call) does not hide the give-up.
      const waited = this.host.now() - call.record.startMs;
      this.endCall(call, !call.responseArrived && waited < ONE_WAY_MS ? 'one-way' : this.clientLeft(call));
    }
    this.up.end();
  }

  /**
   * How a waiting call ends when the client leaves: it gave up, unless the upstream had already hung up
   * without answering it (a request sent while the service's FIN was on its way), when no answer could come.
   */
  private clientLeft(call: CallState): CallOutcome {
    return this.upstreamEnded && !call.responseArrived ? 'upstream-closed' : 'gave-up';
  }

  private endCall(call: CallState, outcome: CallOutcome): void {
    if (call.record.outcome) return;
    const now = this.host.now();
    call.record.outcome = outcome;
    call.record.endMs = now;
    const held = call.upHeld + call.downHeld;
    // A call held for ever (hang) met a delay as long as its wait.
    call.record.delayMs = Number.isFinite(held) ? held : now - call.record.startMs;
    if (this.pending === call) this.pending = null;
    this.host.emitCallEnd(call.record);
  }

  private schedule(action: TimedAction): void {
    this.later(action.afterMs, () => {
      if (action.kind === 'reset') {
        this.forcedReason = 'fault-reset';
        if (this.pending) this.endCall(this.pending, 'upstream-closed');
        // Held bytes must not reach the service after the reset (an upstream connect may still complete).
        this.up.dispose();
        this.down?.dispose();
        reset(this.client);
        if (this.upstream) reset(this.upstream);
      } else {
        this.closeCleanly('fault-close');
      }
    });
  }

  /** End both sides with a FIN, as a server that hangs up would. */
  private closeCleanly(reason: CloseReason): void {
    if (this.done || this.forcedReason) return;
    this.forcedReason = reason;
    if (this.pending) this.endCall(this.pending, 'upstream-closed');
    this.up.dispose();
    this.down?.dispose();
    endThenDestroy(this.client);
    if (this.upstream) endThenDestroy(this.upstream);
  }

  /** An error on one side: reset the other so the peer sees what we saw. */
  private failed(reason: CloseReason, message: string): void {
    if (this.done) return;
    if (this.pending) this.endCall(this.pending, reason === 'client-reset' ? this.clientLeft(this.pending) : 'upstream-closed');
    if (!this.forcedReason) this.forcedReason = reason;
    this.errorMessage ??= message;
    reset(this.client);
    if (this.upstream) reset(this.upstream);
    this.maybeDone();
  }


  /** Shut down: pending calls end as unfinished. */
  shutdown(): void {
    if (this.done) return;
    if (this.pending) this.endCall(this.pending, 'unfinished');
    this.forcedReason ??= 'shutdown';
    this.client.destroy();
    this.upstream?.destroy();
    this.finish();
  }

  /** Done when both sockets are closed; a connection that never reached upstream needs only the client. */
  private maybeDone(): void {
    if (this.clientClosed && (this.upstream === null || this.upstreamClosed)) this.finish();
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.up.dispose();
    this.down?.dispose();
    if (this.pending) this.endCall(this.pending, this.clientClosed ? this.clientLeft(this.pending) : 'upstream-closed');
    if (!this.client.destroyed) this.client.destroy();
    if (this.upstream && !this.upstream.destroyed) this.upstream.destroy();
    this.host.closed(this, this.forcedReason ?? 'closed', this.errorMessage);
  }

  stats(): { bytesUp: number; bytesDown: number; calls: number } {
    return { bytesUp: this.up.forwardedBytes(), bytesDown: this.down?.forwardedBytes() ?? 0, calls: this.connCalls };
  }

  resume(): void {
    this.up.pump();
    this.down?.pump();
  }

  private later(ms: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
    return t;
  }

  private clearLater(t: NodeJS.Timeout): void {
    clearTimeout(t);
    this.timers.delete(t);
  }
}

function reset(socket: net.Socket): void {
  if (socket.destroyed) return;
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

function endThenDestroy(socket: net.Socket): void {
  if (socket.destroyed) return;
  socket.end(() => socket.destroy());
}
