// A running proxy with everything that records it: the engine, the policy planner, the
// statistics (flushed to the stats file every second), the traffic log, the optional pcap
// and the control API. The daemon, the CLI and the demo all run one of these.
import fs from 'node:fs/promises';
import { ProxyEngine } from './proxy/engine.js';
import type { Target } from './proxy/types.js';
import { createPolicyPlanner, type PolicyPlanner } from './policy/planner.js';
import { formatFault } from './policy/faults.js';
import { PcapWriter } from './record/pcap.js';
import { StatsRecorder, type Stats } from './record/stats.js';
import { TrafficLog } from './record/traffic-log.js';
import { formatAddress, type Settings } from './settings.js';
import { startControlServer, type ControlServer } from './control/server.js';

/** Connection errors written to the session's log before it only counts them. */
export const MAX_ERRORS_LOGGED = 100;

export interface SessionFiles {
  statsFile: string;
  logFile: string;
  pcapFile: string | null;
}

export interface SessionOptions {
  /** Port for the control API on 127.0.0.1 (0 picks one); null: no control API. */
  controlPort?: number | null;
  /** How often the stats file is rewritten while running; default 1000 ms. */
  flushIntervalMs?: number;
  /** Where the session reports its own trouble (the daemon's log, the CLI's stderr). */
  log?: (line: string) => void;
  /** Caps of the traffic log (defaults: 200 000 events, 100 MiB). */
  trafficLogCaps?: { maxEvents?: number; maxBytes?: number };
}

/** The stats file: the recorder's figures plus where the detail went. */
export type SessionStats = Stats & {
  trafficLog: { path: string; written: number; dropped: number; capped: boolean };
  pcap: { path: string; packets: number; capped: boolean } | null;
};

export class Session {
  private flushTimer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();
  private stopping: Promise<SessionStats> | null = null;

  private constructor(
    readonly settings: Settings,
    readonly files: SessionFiles,
    readonly engine: ProxyEngine,
    readonly policy: PolicyPlanner,
    readonly recorder: StatsRecorder,
    readonly traffic: TrafficLog,
    readonly pcap: PcapWriter | null,
    readonly address: Target,
    private readonly log: (line: string) => void,
    public control: ControlServer | null = null,
  ) {}

  static async start(settings: Settings, files: SessionFiles, opts: SessionOptions = {}): Promise<Session> {
    const log = opts.log ?? (() => {});
    const policy = createPolicyPlanner({
      delay: settings.delay,
      delayPer: settings.delayPer,
      direction: settings.direction,
      faults: settings.faults,
      seed: settings.seed,
    });
    const engine = new ProxyEngine({
      target: settings.target,
      listenHost: settings.listenHost,
      listenPort: settings.listenPort,
      planner: policy.planner,
    });
    const address = await engine.listen();
    const recorder = new StatsRecorder({
      name: settings.name,
      target: formatAddress(settings.target),
      listen: formatAddress(address),
      seed: settings.seed,
      policy: {
        delay: settings.delay.text,
        delayPer: settings.delayPer,
        direction: settings.direction,
        faults: settings.faults.map(formatFault),
      },
      maxWaitMs: settings.maxWaitMs,
      startedAt: new Date(),
    });
    recorder.attach(engine);
    const traffic = new TrafficLog(files.logFile, { logPayload: settings.logPayload, ...opts.trafficLogCaps });
    traffic.attach(engine);
    let pcap: PcapWriter | null = null;
    if (files.pcapFile) {
      pcap = new PcapWriter(files.pcapFile, { target: settings.target });
      pcap.attach(engine);
    }
    // A job full of resets must not fill the disk or the terminal: past a few lines, errors are only counted (stats).
    let errorsLogged = 0;
    engine.on('error', (ev) => {
      errorsLogged += 1;
      if (errorsLogged <= MAX_ERRORS_LOGGED) log(`connection ${ev.conn}: ${ev.side} ${ev.code ?? 'error'}: ${ev.message}`);
      if (errorsLogged === MAX_ERRORS_LOGGED) log(`further connection errors are counted in the statistics (errors.byCode), not logged`);
    });
    const session = new Session(settings, files, engine, policy, recorder, traffic, pcap, address, log);
    if (opts.controlPort !== undefined && opts.controlPort !== null) {
      try {
        session.control = await startControlServer(session, { port: opts.controlPort });
      } catch (err) {
        // Nothing may stay open on a failed start, or a daemon would live on with no one to stop it.
        await session.stop();
        throw err;
      }
    }
    await session.flush();
    const every = opts.flushIntervalMs ?? 1000;
    session.flushTimer = setInterval(() => void session.flush(), every);
    session.flushTimer.unref();
    return session;
  }

  /** The statistics now; calls still waiting count as unfinished with their wait so far. */
  snapshot(): SessionStats {
    const stats = this.recorder.snapshot({ endedAt: null, unfinishedNow: this.engine.elapsedMs() });
    return this.withFiles(stats);
  }

  private withFiles(stats: Stats): SessionStats {
    const t = this.traffic.stats();
    const p = this.pcap?.stats();
    const notes: string[] = [];
    if (t.dropped > 0) {
      const why = t.capped ? 'it reached its cap' : 'the disk fell behind';
      notes.push(`the traffic log left out ${t.dropped} of ${t.events} events (${why}); the statistics still count every call`);
    }
    if (p?.capped) notes.push(`the pcap capture reached its size cap; ${p.packetsDropped} packets were left out`);
    return {
      ...stats,
      ...(notes.length > 0 ? { notes } : {}),
      trafficLog: { path: this.files.logFile, written: t.written, dropped: t.dropped, capped: t.capped },
      pcap: this.pcap && p ? { path: this.files.pcapFile!, packets: p.packetsWritten, capped: p.capped } : null,
    };
  }

  /** Rewrite the stats file atomically (write, then rename), one write at a time. */
  flush(stats?: SessionStats): Promise<void> {
    this.flushing = this.flushing.then(() => writeJsonAtomically(this.files.statsFile, stats ?? this.snapshot())).catch((err) => {
      this.log(`could not write ${this.files.statsFile}: ${err instanceof Error ? err.message : String(err)}`);
    });
    return this.flushing;
  }

  /** Stop everything, write the final files; resolves with the final statistics. Idempotent. */
  stop(): Promise<SessionStats> {
    this.stopping ??= (async () => {
      if (this.flushTimer) clearInterval(this.flushTimer);
      await this.control?.close();
      await this.engine.close();
      const stats = this.withFiles(this.recorder.snapshot({ endedAt: new Date() }));
      for (const [what, closing] of [
        ['traffic log', this.traffic.close()],
        ['pcap', this.pcap?.close()],
      ] as const) {
        try {
          await closing;
        } catch (err) {
          this.log(`could not finish the ${what}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      await this.flush(stats);
      return stats;
    })();
    return this.stopping;
  }
}

async function writeJsonAtomically(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await fs.writeFile(tmp, JSON.stringify(value, null, 2));
  await fs.rename(tmp, path);
}
