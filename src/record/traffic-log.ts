// The traffic log: one JSON line per engine event, written through a buffered stream so the proxy
// never waits on the disk. Bounded twice: a cap on lines and bytes for the whole run, and a bound on
// what may sit in memory when the disk is slower than the traffic. Lines past either bound are
// counted, not written, and the last line says how many.
import { performance } from 'node:perf_hooks';
import type { ProxyEvents } from '../proxy/types.js';
import { PayloadRedactor } from './redact.js';
import { RecordFile } from './record-file.js';

/** What the recorders need of the engine: its events and, if it has one, its clock. */
export interface ProxyEventSource {
  on<K extends keyof ProxyEvents>(event: K, listener: (...args: ProxyEvents[K]) => void): unknown;
  elapsedMs?(): number;
}

export interface TrafficLogOptions {
  /** Add a redacted `preview` of the first bytes to each data line. */
  logPayload: boolean;
  /** Detail lines written at most; default 200 000. */
  maxEvents?: number;
  /** Bytes written at most (the last line excepted); default 100 MiB. */
  maxBytes?: number;
  /** Bytes that may wait for the disk before detail lines are dropped; default 8 MiB. */
  maxBufferedBytes?: number;
}

export interface TrafficLogCounts {
  /** Lines offered, written or not. */
  events: number;
  written: number;
  dropped: number;
  /** Dropped lines by `event` (open, data, call, close, error, control, ...). */
  droppedByKind: Record<string, number>;
  /** Of `dropped`, those dropped because the disk fell behind. */
  droppedSlowDisk: number;
  /** The line or byte cap was reached; nothing more is written. */
  capped: boolean;
  bytesWritten: number;
}

const MiB = 1024 * 1024;
/** Lines are gathered into writes of about this size. */
const BATCH_BYTES = 64 * 1024;

export class TrafficLog {
  private readonly file: RecordFile;
  private readonly maxEvents: number;
  private readonly maxBytes: number;
  private readonly maxBufferedBytes: number;
  private readonly redactors = new Map<number, PayloadRedactor>();
  private readonly counts: TrafficLogCounts = { events: 0, written: 0, dropped: 0, droppedByKind: {}, droppedSlowDisk: 0, capped: false, bytesWritten: 0 };
  private batch: string[] = [];
  private batchBytes = 0;
  private flushScheduled = false;
  private clock: () => number;
  private closing: Promise<void> | null = null;

  constructor(
    readonly path: string,
    private readonly options: TrafficLogOptions,
  ) {
    this.maxEvents = options.maxEvents ?? 200_000;
    this.maxBytes = options.maxBytes ?? 100 * MiB;
    this.maxBufferedBytes = options.maxBufferedBytes ?? 8 * MiB;
    const t0 = performance.now();
    this.clock = () => performance.now() - t0;
    this.file = new RecordFile(path);
  }

  get capped(): boolean {
    return this.counts.capped;
  }

  stats(): TrafficLogCounts {
    return { ...this.counts, droppedByKind: { ...this.counts.droppedByKind } };
  }

  attach(source: ProxyEventSource): void {
    if (source.elapsedMs) this.clock = source.elapsedMs.bind(source);
    source.on('open', (info) => {
      this.line('open', { t: info.openedMs, conn: info.conn, event: 'open', client: info.client });
    });
    source.on('data', (ev) => {
      const fields: Record<string, unknown> = { t: ev.tMs, conn: ev.conn, event: 'data', dir: ev.dir, bytes: ev.bytes, delayMs: ms(ev.delayMs), call: ev.call };
      const preview = this.preview(ev.conn, ev.chunk, ev.dir);
      if (preview !== undefined) fields.preview = preview;
      this.line('data', fields);
    });
    source.on('callEnd', (call) => {
      const endMs = call.endMs ?? call.startMs;
      this.line('call', {
        t: endMs,
        conn: call.conn,
        event: 'call',
        call: call.call,
        connCall: call.connCall,
        outcome: call.outcome,
        waitMs: ms(endMs - call.startMs),
        delayMs: ms(call.delayMs),
        bytesUp: call.bytesUp,
        bytesDown: call.bytesDown,
      });
    });
    source.on('close', (ev) => {
      this.redactors.delete(ev.conn);
      this.line('close', { t: ev.tMs, conn: ev.conn, event: 'close', reason: ev.reason, bytesUp: ev.bytesUp, bytesDown: ev.bytesDown, calls: ev.calls, error: ev.error });
    });
    source.on('error', (ev) => {
      this.line('error', { t: ev.tMs, conn: ev.conn, event: 'error', side: ev.side, reason: ev.message, code: ev.code });
    });
  }

  /** An extra line, e.g. `{ event: 'control', ... }`; stamped with the engine's clock unless it has `t`. */
  note(fields: Record<string, unknown>): void {
    this.line(typeof fields.event === 'string' ? fields.event : 'note', { t: this.clock(), ...fields });
  }

  /** Flush, write the totals line and end the file. Rejects if the file could not be written. */
  close(): Promise<void> {
    if (!this.closing) {
      const { droppedByKind, ...totals } = this.counts;
      this.batch.push(JSON.stringify({ t: ms(this.clock()), event: 'end', ...totals, droppedByKind, maxEvents: this.maxEvents, maxBytes: this.maxBytes }) + '\n');
      this.flush();
      this.redactors.clear();
      this.closing = this.file.end();
    }
    return this.closing;
  }

  private preview(conn: number, chunk: Buffer, dir: 'up' | 'down'): string | undefined {
    if (!this.options.logPayload || this.counts.capped || this.closing) return undefined;
    // Every chunk goes through the connection's redactor, even when its line is dropped, so a
    // secret that continues into the next chunk is still known there.
    let redactor = this.redactors.get(conn);
    if (!redactor) {
      redactor = new PayloadRedactor();
      this.redactors.set(conn, redactor);
    }
    return redactor.preview(chunk, dir);
  }

  private line(kind: string, fields: Record<string, unknown>): void {
    this.counts.events += 1;
    if (this.closing || this.file.unwritable) return this.drop(kind);
    if (this.counts.capped) return this.drop(kind);
    if (this.file.buffered + this.batchBytes > this.maxBufferedBytes) {
      this.counts.droppedSlowDisk += 1;
      return this.drop(kind);
    }
    if (typeof fields.t === 'number') fields.t = ms(fields.t);
    const text = JSON.stringify(fields) + '\n';
    const bytes = Buffer.byteLength(text);
    if (this.counts.written >= this.maxEvents || this.counts.bytesWritten + bytes > this.maxBytes) {
      this.counts.capped = true;
      this.redactors.clear();
      return this.drop(kind);
    }
    this.counts.written += 1;
    this.counts.bytesWritten += bytes;
    this.batch.push(text);
    this.batchBytes += bytes;
    if (this.batchBytes >= BATCH_BYTES) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        if (!this.closing) this.flush();
      });
    }
  }

  private drop(kind: string): void {
    this.counts.dropped += 1;
    this.counts.droppedByKind[kind] = (this.counts.droppedByKind[kind] ?? 0) + 1;
  }

  private flush(): void {
    if (this.batch.length === 0) return;
    const text = this.batch.join('');
    this.batch = [];
    this.batchBytes = 0;
    this.file.write(text);
  }
}

/** Times and delays to a tenth of a millisecond: finer than the timers, short in the file. */
function ms(value: number): number {
  return Math.round(value * 10) / 10;
}
