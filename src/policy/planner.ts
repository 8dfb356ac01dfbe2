// Turns the delay policy and the faults into the engine's per-connection plan.
//
// How faults and the delay combine on a connection, in the order they act:
//   1. refuse         the client is reset at once; nothing else happens.
//   2. connect-delay  the upstream connect waits; nothing flows meanwhile.
//   3. hang           chunks of the hung direction (and calls) are held for ever; no delay is drawn for them.
//   4. delay          each chunk is held by the delay policy (per call, chunk or connection).
//   5. pacing         released bytes are written in pieces: slice and bandwidth pauses add up,
//                     the smallest piece size wins.
//   6. limit-data     the connection closes cleanly once that many bytes went the limited way.
//   7. slow-close     the FIN after the last byte waits.
//   reset / close after= run alongside as timers from the connection's open (or from the start
//   of the first call in calls=); whichever ends the connection first wins.
// Several faults of one kind add up (connect-delay, slow-close, pauses) or take the strictest
// value (limit-data). One seeded RNG feeds every draw: the delay and each probability= roll.
import type { ConnectionPlan, Direction, HoldContext, LanePlan, Pacing, Planner } from '../proxy/types.js';
import type { DelayPolicy } from './delay.js';
import { formatFault, faultKind, type FaultSpec } from './faults.js';
import { inRange, noFaults, type ConnectionFaults, type LaneFaults } from './faults/fault.js';
import { lanesOf, type DelayPer, type DirectionScope } from './options.js';
import { createRng, type Rng } from './rng.js';

export interface PolicyOptions {
  delay: DelayPolicy;
  delayPer: DelayPer;
  direction: DirectionScope;
  faults: FaultSpec[];
  seed: number;
}

export interface PolicyDescription {
  delay: string;
  delayPer: DelayPer;
  direction: DirectionScope;
  faults: string[];
  seed: number;
}

export interface PolicyPlanner {
  planner: Planner;
  /** For calls that start from now on, on open connections too. */
  setDelay(policy: DelayPolicy): void;
  /** For connections accepted from now on. */
  setFaults(faults: FaultSpec[]): void;
  describe(): PolicyDescription;
}

/** Rolls a connection's probability= for a fault; certain outcomes do not use the RNG. */
function rolls(rng: Rng, percent: number): boolean {
  if (percent >= 100) return true;
  if (percent <= 0) return false;
  return rng.next() * 100 < percent;
}

function faultsFor(faults: FaultSpec[], rng: Rng, nextCall: number): ConnectionFaults {
  const conn = noFaults();
  for (const spec of faults) {
    if (!rolls(rng, spec.scope.probability)) continue;
    const kind = faultKind(spec.name);
    if (kind.scoping === 'connection' && spec.scope.calls && !inRange(spec.scope.calls, nextCall)) continue;
    kind.apply(spec.params, spec.scope, conn);
  }
  return conn;
}

function pacingFor(lane: LaneFaults, call: number | null): Pacing | null {
  const active = lane.pacers.filter((p) => p.calls === null || (call !== null && inRange(p.calls, call)));
  if (active.length === 0) return null;
  if (active.length === 1) return active[0].pacing;
  return {
    pieceBytes: Math.min(...active.map((p) => p.pacing.pieceBytes)),
    pauseAfter: (n) => active.reduce((total, p) => total + p.pacing.pauseAfter(n), 0),
  };
}

function hangs(lane: LaneFaults, call: number | null): boolean {
  return lane.hang.some((range) => range === null || (call !== null && inRange(range, call)));
}

export function createPolicyPlanner(opts: PolicyOptions): PolicyPlanner {
  const rng = createRng(opts.seed);
  const { delayPer, direction } = opts;
  const delayed = new Set<Direction>(lanesOf(direction));
  let delay = opts.delay;
  let faults = opts.faults;
  // Data outside any call (a greeting) has no call number; in chunk mode it samples as the latest call.
  let latestCall = 0;
  // A refused connection never starts a call, so for connection faults' calls= it counts as one:
  // `refuse calls=5..6` refuses two attempts instead of every connection once call 4 is done.
  let refusals = 0;

  const planner: Planner = (ctx) => {
    const conn = faultsFor(faults, rng, ctx.callsStarted + refusals + 1);
    if (conn.refuse) refusals += 1;
    // The policy a call started under, so a setDelay between its request and its response does not split it.
    let callPolicy = { call: 0, policy: delay };
    const policyFor = (call: number | null) => (call !== null && callPolicy.call === call ? callPolicy.policy : delay);
    const drawnForConnection = new Set<Direction>();

    const delayMs = (ctx: HoldContext): number => {
      if (!delayed.has(ctx.dir)) return 0;
      const draw = (policy: DelayPolicy, call: number) => (policy.isZero ? 0 : policy.sample({ call, elapsedMs: ctx.nowMs, rng }));
      if (delayPer === 'chunk') return draw(policyFor(ctx.call), ctx.call ?? Math.max(1, latestCall));
      if (ctx.call === null || !ctx.unitStart) return 0;
      if (delayPer === 'call') return draw(policyFor(ctx.call), ctx.call);
      if (ctx.connCall !== 1 || drawnForConnection.has(ctx.dir)) return 0;
      drawnForConnection.add(ctx.dir);
      return draw(policyFor(ctx.call), ctx.call);
    };

    const lanePlan = (dir: Direction): LanePlan => {
      const lane = conn.lanes[dir];
      const plan: LanePlan = {
        hold: (ctx) => {
          if (ctx.call !== null) latestCall = Math.max(latestCall, ctx.call);
          if (dir === 'up' && ctx.unitStart && ctx.call !== null) callPolicy = { call: ctx.call, policy: delay };
          return hangs(lane, ctx.call) ? Infinity : delayMs(ctx);
        },
      };
      if (lane.pacers.length > 0) plan.pacing = (ctx) => pacingFor(lane, ctx.call);
      if (lane.limitBytes !== null) plan.limitBytes = lane.limitBytes;
      if (lane.slowCloseMs > 0) plan.slowCloseMs = lane.slowCloseMs;
      return plan;
    };

    const plan: ConnectionPlan = { up: lanePlan('up'), down: lanePlan('down') };
    if (conn.refuse) plan.refuse = true;
    if (conn.connectDelayMs > 0) plan.connectDelayMs = conn.connectDelayMs;
    if (conn.timed.length > 0) plan.timed = conn.timed;
    if (conn.callTimed.length > 0) {
      const pending = [...conn.callTimed];
      plan.onCallStart = (call) => {
        const due = pending.filter((t) => inRange(t.calls, call.call));
        if (due.length === 0) return undefined;
        for (const t of due) pending.splice(pending.indexOf(t), 1);
        return due.map((t) => t.action);
      };
    }
    return plan;
  };

  return {
    planner,
    setDelay: (policy) => {
      delay = policy;
    },
    setFaults: (next) => {
      faults = next;
    },
    describe: () => ({ delay: delay.text, delayPer, direction, faults: faults.map(formatFault), seed: opts.seed }),
  };
}
