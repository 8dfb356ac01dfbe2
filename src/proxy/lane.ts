// One direction of one connection: an ordered queue of held chunks between a source
// socket and a destination socket. Ordering, delays, pacing and backpressure live here
// and nowhere else, so the rest of the engine never has to think about them.
import type { Socket } from 'node:net';
import type { Direction, HoldContext, LanePlan, Pacing } from './types.js';

/** A chunk waiting in the lane. `offset` advances as pieces of it are written. */
interface HeldChunk {
  buf: Buffer;
  offset: number;
  arrivedAt: number;
  releaseAt: number;
  pacing: Pacing | null;
  /** The call whose bytes these are (an opaque tag the connection uses to mark answers). */
  tag: unknown;
}

export interface LaneHost {
  /** The engine's clock, in ms. */
  now(): number;
  /** True while the whole engine is paused. */
  paused(): boolean;
  /** Called for each piece written to the destination. */
  forwarded(dir: Direction, piece: Buffer, heldMs: number, tag: unknown): void;
  /** The lane forwarded its `limitBytes`; the connection must close. */
  limitReached(dir: Direction): void;
  /** Held bytes changed by `delta` (for the engine's counters). */
  heldChanged(delta: number, laneHeld: number): void;
}

export class Lane {
  private readonly queue: HeldChunk[] = [];
  private queuedBytes = 0;
  private lastReleaseAt = 0;
  private nextPieceAt = 0;
  private forwarded = 0;
  private dest: Socket | null = null;
  private waitingForDrain = false;
  private sourcePausedByUs = false;
  private sourceEnded = false;
  private finished = false;
  private timer: NodeJS.Timeout | null = null;
  private disposed = false;
  private lastHeld = 0;

  constructor(
    readonly dir: Direction,
    private readonly source: Socket,
    private readonly plan: LanePlan,
    private readonly host: LaneHost,
    private readonly highWaterMark: number,
  ) {}

  /** Bytes written to the destination so far. */
  forwardedBytes(): number {
    return this.forwarded;
  }

  /** Bytes held in this lane: queued here plus written but not yet flushed by the destination. */
  held(): number {
    return this.queuedBytes + (this.dest ? this.dest.writableLength : 0);
  }

  setDestination(dest: Socket): void {
    this.dest = dest;
    dest.on('drain', () => {
      this.waitingForDrain = false;
      this.pump();
    });
    this.pump();
  }

  /** A chunk arrived from the source. Returns the hold the plan drew for it, in ms. */
  push(buf: Buffer, ctx: HoldContext, tag: unknown): number {
    if (this.disposed || this.finished) return 0;
    const now = this.host.now();
    const hold = this.plan.hold(ctx);
    // Never release before the chunk ahead: order is the one thing a proxy must not break.
    const releaseAt = Math.max(this.lastReleaseAt, now + (hold > 0 ? hold : 0));
    this.lastReleaseAt = releaseAt;
    const pacing = this.plan.pacing ? this.plan.pacing(ctx) : null;
    this.queue.push({ buf, offset: 0, arrivedAt: now, releaseAt, pacing, tag });
    this.queuedBytes += buf.length;
    this.noteHeld();
    if (this.held() >= this.highWaterMark && !this.sourcePausedByUs) {
      this.sourcePausedByUs = true;
      this.source.pause();
    }
    this.pump();
    return hold;
  }

  /** The source sent its FIN: pass it on once everything before it has gone. */
  end(): void {
    this.sourceEnded = true;
    this.pump();
  }

  /** Write whatever is due, in order, as far as the destination accepts it. */
  pump(): void {
    if (this.disposed || !this.dest || this.finished) return;
    if (this.host.paused()) return;
    const dest = this.dest;
    while (this.queue.length > 0) {
      if (this.waitingForDrain || dest.destroyed) return;
      const head = this.queue[0];
      const now = this.host.now();
      const due = Math.max(head.releaseAt, this.nextPieceAt);
      if (due > now) {
        if (due !== Infinity) this.arm(due - now);
        return;
      }
      let n = head.buf.length - head.offset;
      if (head.pacing) n = Math.min(n, Math.max(1, head.pacing.pieceBytes));
      const limit = this.plan.limitBytes;
      if (limit !== undefined) n = Math.min(n, limit - this.forwarded);
      const piece = n === head.buf.length && head.offset === 0 ? head.buf : head.buf.subarray(head.offset, head.offset + n);
      head.offset += n;
      this.queuedBytes -= n;
      this.forwarded += n;
      if (head.offset >= head.buf.length) this.queue.shift();
      const accepted = n > 0 ? dest.write(piece) : true;
      this.noteHeld();
      if (n > 0) this.host.forwarded(this.dir, piece, now - head.arrivedAt, head.tag);
      if (head.pacing) this.nextPieceAt = now + head.pacing.pauseAfter(n);
      if (limit !== undefined && this.forwarded >= limit) {
        this.queue.length = 0;
        this.queuedBytes = 0;
        this.noteHeld();
        this.host.limitReached(this.dir);
        return;
      }
      if (!accepted) {
        this.waitingForDrain = true;
        break;
      }
    }
    this.maybeResumeSource();
    if (this.queue.length === 0 && this.sourceEnded && !this.finished) this.sendFin();
  }

  private sendFin(): void {
    this.finished = true;
    const delay = this.plan.slowCloseMs ?? 0;
    const fin = () => {
      if (this.disposed || !this.dest || this.dest.destroyed) return;
      this.dest.end();
    };
    if (delay > 0) this.timer = setTimeout(fin, delay);
    else fin();
  }

  private maybeResumeSource(): void {
    // Resume at half the mark, not just under it, so a slow reader does not cause a read per byte drained.
    if (this.sourcePausedByUs && this.held() <= this.highWaterMark / 2) {
      this.sourcePausedByUs = false;
      if (!this.source.destroyed) this.source.resume();
    }
  }

  private arm(ms: number): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.pump();
    }, Math.ceil(ms));
  }

  private noteHeld(): void {
    const held = this.held();
    if (held !== this.lastHeld) {
      this.host.heldChanged(held - this.lastHeld, held);
      this.lastHeld = held;
    }
  }

  /** Drop everything: the connection is gone. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.queue.length = 0;
    this.queuedBytes = 0;
    this.host.heldChanged(-this.lastHeld, 0);
    this.lastHeld = 0;
  }
}
