// The proxy engine's contract with the layers above it: what it reports (events)
// and what it asks (the per-connection plan). No GitHub, file or policy code here.

/** `up`: client -> upstream (requests); `down`: upstream -> client (responses). */
export type Direction = 'up' | 'down';

/**
 * How a call ended.
 * - `answered`: the first response byte was delivered to the client.
 * - `gave-up`: the client closed or reset the connection while waiting.
 * - `upstream-closed`: the upstream closed, reset or failed before answering.
 * - `unfinished`: the proxy shut down while the call was still waiting.
 * - `one-way`: the client closed right after sending, never waiting for a reply (PostgreSQL Terminate,
 *   LDAP Unbind). Not a request/response turn, so statistics and gates leave it out.
 */
export type CallOutcome = 'answered' | 'gave-up' | 'upstream-closed' | 'unfinished' | 'one-way';

/** One request/response turn on a connection. */
export interface CallRecord {
  /** Connection id (1-based, in accept order). */
  conn: number;
  /** Call number over the whole proxy (1-based, in start order). */
  call: number;
  /** Call number on its connection (1-based). */
  connCall: number;
  /** Milliseconds since the engine started, when the first client byte of the call arrived. */
  startMs: number;
  /** Milliseconds since the engine started, when the call ended; null while it is pending. */
  endMs: number | null;
  /**
   * Delay the policy drew for this call (request hold + response hold), in ms, set as soon as it is drawn.
   * A call held for ever (`hang`) gets its wait as its delay when it ends.
   */
  delayMs: number;
  outcome: CallOutcome | null;
  /** Client bytes of the call so far. */
  bytesUp: number;
  /** Response bytes delivered to the client for the call so far. */
  bytesDown: number;
}

/** Why a connection closed. */
export type CloseReason =
  | 'closed' // both sides finished normally (FIN both ways)
  | 'client-reset'
  | 'upstream-reset'
  | 'connect-failed'
  | 'refused' // the `refuse` fault
  | 'fault-reset' // the `reset after=` fault
  | 'fault-close' // the `close after=` fault
  | 'limit-data' // the `limit-data` fault
  | 'shutdown';

export interface ConnectionInfo {
  conn: number;
  /** Client address as `host:port`. */
  client: string;
  /** Milliseconds since the engine started. */
  openedMs: number;
}

export interface ProxyEvents {
  /** A client connected (before the upstream connect). */
  open: [info: ConnectionInfo];
  /** Bytes were written to the destination side of `dir`, after `delayMs` in the proxy. */
  data: [ev: { conn: number; dir: Direction; bytes: number; delayMs: number; tMs: number; chunk: Buffer; call: number | null }];
  /** A call started (its first client byte arrived). */
  callStart: [call: CallRecord];
  /** A call ended; `outcome` and `endMs` are set. */
  callEnd: [call: CallRecord];
  /** A connection ended; both sockets are gone. */
  close: [ev: { conn: number; reason: CloseReason; tMs: number; bytesUp: number; bytesDown: number; calls: number; error?: string }];
  /** A socket error that the engine handled (never fatal to the proxy). */
  error: [ev: { conn: number; side: 'client' | 'upstream'; message: string; code?: string; tMs: number }];
}

/** What the delay/fault layer is told when it must decide something. */
export interface HoldContext {
  conn: number;
  dir: Direction;
  /** Global call number of the call the data belongs to; null for data outside any call (a server greeting). */
  call: number | null;
  /** Call number on the connection; null as above. */
  connCall: number | null;
  /** True for the first chunk of the call in this direction (request start or response start). */
  unitStart: boolean;
  bytes: number;
  /** Milliseconds since the engine started. */
  nowMs: number;
}

/** How to pace the bytes of a lane once they are released (bandwidth, slicing). */
export interface Pacing {
  /** Largest piece written at once. */
  pieceBytes: number;
  /** Pause after writing `n` bytes, in ms. */
  pauseAfter(n: number): number;
}

/** The plan for one direction of one connection. */
export interface LanePlan {
  /**
   * How long to hold a chunk, in ms, counted from its arrival; Infinity holds it for ever (`hang`).
   * Called for every chunk; the engine keeps order, so a chunk is never released before the one ahead of it.
   */
  hold(ctx: HoldContext): number;
  /** Pacing for released bytes, if any. Asked per chunk so call-scoped faults can switch it on and off. */
  pacing?(ctx: HoldContext): Pacing | null;
  /** Close the connection cleanly after this many bytes went this way. */
  limitBytes?: number;
  /** Hold the FIN that follows the last byte this long. */
  slowCloseMs?: number;
}

/** Per-connection timed actions, started at connection open or at a call start. */
export interface TimedAction {
  kind: 'reset' | 'close';
  afterMs: number;
}

/** The plan the delay/fault layer gives the engine for each accepted connection. */
export interface ConnectionPlan {
  /** Reset the client at once, never connect upstream. */
  refuse?: boolean;
  /** Wait this long before connecting upstream; nothing flows meanwhile. */
  connectDelayMs?: number;
  /** Timed actions counted from the connection's open. */
  timed?: TimedAction[];
  /** Timed actions counted from the start of a call (for call-scoped faults); asked at each call start. */
  onCallStart?(call: CallRecord): TimedAction[] | undefined;
  up: LanePlan;
  down: LanePlan;
}

export interface PlanContext {
  conn: number;
  client: string;
  nowMs: number;
  /** Number of calls the proxy has started so far (the next call will be `callsStarted + 1`). */
  callsStarted: number;
}

/** Decides the plan for a new connection. The default forwards everything at once. */
export type Planner = (ctx: PlanContext) => ConnectionPlan;

export interface Target {
  host: string;
  port: number;
}

export interface ProxyOptions {
  target: Target;
  /** Address to listen on; default 127.0.0.1. */
  listenHost?: string;
  /** Port to listen on; 0 picks a free one. */
  listenPort?: number;
  planner?: Planner;
  /** Bytes held per connection and direction before the engine stops reading the source. Default 1 MiB, at least 64 KiB. */
  highWaterMark?: number;
  /** Upstream connect timeout in ms; default 10 s. */
  connectTimeoutMs?: number;
}

/** The engine's own counters, for tests and the stats file. */
export interface EngineCounters {
  connectionsTotal: number;
  connectionsOpen: number;
  connectionsFailed: number;
  callsStarted: number;
  bytesUp: number;
  bytesDown: number;
  /** Bytes held in the proxy right now (queued plus written but not yet flushed), all connections. */
  heldBytes: number;
  /** The largest held-bytes of a single lane seen so far. */
  maxLaneHeldBytes: number;
}
