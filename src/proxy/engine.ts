// The proxy engine: accepts clients, gives each a Connection, and publishes what happens
// as typed events. It knows nothing of GitHub, files or policy syntax: a Planner decides
// how each connection is treated.
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { Connection, type ConnectionHost } from './connection.js';
import type { CloseReason, EngineCounters, Planner, ProxyEvents, ProxyOptions, Target } from './types.js';

/** The plan used when no planner is given: forward everything at once. */
export const passThrough: Planner = () => ({ up: { hold: () => 0 }, down: { hold: () => 0 } });

const MiB = 1024 * 1024;

export class ProxyEngine extends EventEmitter<ProxyEvents> {
  private readonly server: net.Server;
  private readonly connections = new Set<Connection>();
  private readonly t0 = performance.now();
  private planner: Planner;
  private isPaused = false;
  private listening = false;
  private closing: Promise<void> | null = null;
  private nextConnId = 0;
  private readonly counts: EngineCounters = {
    connectionsTotal: 0,
    connectionsOpen: 0,
    connectionsFailed: 0,
    callsStarted: 0,
    bytesUp: 0,
    bytesDown: 0,
    heldBytes: 0,
    maxLaneHeldBytes: 0,
  };
  private readonly host: ConnectionHost;

  constructor(private readonly options: ProxyOptions) {
    super();
    this.planner = options.planner ?? passThrough;
    // allowHalfOpen: a client's FIN must not close our write side; it is forwarded after the queued bytes.
    this.server = net.createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
    this.server.on('error', () => {
      /* reported through listen(); after that, accept errors are per-socket */
    });
    // Socket errors are reported as 'error' events for the recorders; they are never fatal, so the
    // engine listens itself to keep EventEmitter from throwing when nobody else does.
    this.on('error', () => {});
    this.host = {
      now: () => this.elapsedMs(),
      paused: () => this.isPaused,
      target: () => this.options.target,
      // At least 64 KiB: the resume mark (half) must stay above what a socket buffers before it asks for
      // 'drain' (16 KiB), or a paused source could wait for a drain that never comes.
      highWaterMark: Math.max(64 * 1024, options.highWaterMark ?? MiB),
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      nextCallNumber: () => ++this.counts.callsStarted,
      emitCallStart: (call) => this.emit('callStart', call),
      emitCallEnd: (call) => this.emit('callEnd', call),
      emitData: (conn, dir, piece, heldMs, call) => {
        if (dir === 'up') this.counts.bytesUp += piece.length;
        else this.counts.bytesDown += piece.length;
        if (this.listenerCount('data') > 0) {
          this.emit('data', { conn, dir, bytes: piece.length, delayMs: heldMs, tMs: this.elapsedMs(), chunk: piece, call });
        }
      },
      emitError: (conn, side, err) => {
        this.emit('error', { conn, side, message: err.message, code: err.code, tMs: this.elapsedMs() });
      },
      connectFailed: () => {
        this.counts.connectionsFailed += 1;
      },
      heldChanged: (delta, laneHeld) => {
        this.counts.heldBytes += delta;
        if (laneHeld > this.counts.maxLaneHeldBytes) this.counts.maxLaneHeldBytes = laneHeld;
      },
      closed: (conn, reason, error) => this.connectionClosed(conn, reason, error),
    };
  }

  /** Milliseconds since the engine was created: the time base of every event. */
  elapsedMs(): number {
    return performance.now() - this.t0;
  }

  /** Start listening; resolves with the real address (port 0 picks a free port). */
  listen(): Promise<Target> {
    const host = this.options.listenHost ?? '127.0.0.1';
    const port = this.options.listenPort ?? 0;
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once('error', onError);
      this.server.listen({ host, port }, () => {
        this.server.off('error', onError);
        this.listening = true;
        resolve(this.address());
      });
    });
  }

  address(): Target {
    const addr = this.server.address();
    if (!addr || typeof addr === 'string') throw new Error('the proxy is not listening');
    return { host: addr.address, port: addr.port };
  }

  target(): Target {
    return this.options.target;
  }

  /** Use another planner for connections accepted from now on. */
  setPlanner(planner: Planner): void {
    this.planner = planner;
  }

  /** Hold all traffic (data keeps being read until the backpressure mark). */
  pause(): void {
    this.isPaused = true;
  }

  resume(): void {
    this.isPaused = false;
    for (const conn of this.connections) conn.resume();
  }

  paused(): boolean {
    return this.isPaused;
  }

  counters(): EngineCounters {
    return { ...this.counts };
  }

  private accept(socket: net.Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const id = ++this.nextConnId;
    const client = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    const openedMs = this.elapsedMs();
    let plan;
    try {
      plan = this.planner({ conn: id, client, nowMs: openedMs, callsStarted: this.counts.callsStarted });
    } catch (err) {
      // A planner bug must not take the proxy down: report it and treat the connection as pass-through.
      this.emit('error', { conn: id, side: 'client', message: `planner failed: ${err instanceof Error ? err.message : String(err)}`, tMs: openedMs });
      plan = passThrough({ conn: id, client, nowMs: openedMs, callsStarted: this.counts.callsStarted });
    }
    const conn = new Connection(id, socket, plan, this.host);
    this.connections.add(conn);
    this.counts.connectionsTotal += 1;
    this.counts.connectionsOpen += 1;
    this.emit('open', { conn: id, client, openedMs });
    conn.start();
  }

  private connectionClosed(conn: Connection, reason: CloseReason, error?: string): void {
    if (!this.connections.delete(conn)) return;
    this.counts.connectionsOpen -= 1;
    const { bytesUp, bytesDown, calls } = conn.stats();
    this.emit('close', { conn: conn.id, reason, tMs: this.elapsedMs(), bytesUp, bytesDown, calls, ...(error ? { error } : {}) });
  }

  /** Stop accepting, end pending calls as unfinished, close every socket. Idempotent. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = new Promise<void>((resolve) => {
      for (const conn of [...this.connections]) conn.shutdown();
      if (!this.listening) return resolve();
      this.server.close(() => resolve());
    });
    return this.closing;
  }
}

