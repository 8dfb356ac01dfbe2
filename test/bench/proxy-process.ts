// The proxy under test, in its own process as the action's daemon runs it.
// `engine`: ProxyEngine with the real policy planner and nothing else.
// `session`: the daemon's whole Session (statistics, traffic log flushed to disk, stats file every second).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createPolicyPlanner } from '../../src/policy/planner.js';
import { parseDelay } from '../../src/policy/delay.js';
import { ProxyEngine } from '../../src/proxy/engine.js';
import type { CallRecord, ConnectionInfo } from '../../src/proxy/types.js';
import { Session } from '../../src/session.js';
import { parseSettings } from '../../src/settings.js';
import { serve, type ProxyCall } from './ipc.js';

export interface ProxyConfig {
  /** One proxy per upstream port, by name; the ports come back under the same names. */
  targets: Record<string, number>;
  delay: string;
  mode: 'engine' | 'session';
  /** Keep every call for the `calls` request (delay accuracy only). */
  record: boolean;
}

interface Running {
  engine: ProxyEngine;
  close(): Promise<void>;
}

async function startEngine(port: number, delay: string): Promise<Running> {
  const policy = createPolicyPlanner({ delay: parseDelay(delay), delayPer: 'call', direction: 'upstream', faults: [], seed: 1 });
  const engine = new ProxyEngine({ target: { host: '127.0.0.1', port }, listenHost: '127.0.0.1', listenPort: 0, planner: policy.planner });
  await engine.listen();
  return { engine, close: () => engine.close() };
}

async function startSession(port: number, delay: string): Promise<Running> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slow-proxy-bench-'));
  const settings = parseSettings({ target: `127.0.0.1:${port}`, delay, seed: '1' });
  const files = { statsFile: path.join(dir, 'stats.json'), logFile: path.join(dir, 'traffic.jsonl'), pcapFile: null };
  const session = await Session.start(settings, files, { controlPort: null });
  return {
    engine: session.engine,
    close: async () => {
      await session.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

const config = JSON.parse(process.argv[2]) as ProxyConfig;
const calls: ProxyCall[] = [];
const running: Running[] = [];
const ports: Record<string, number> = {};
for (const [name, port] of Object.entries(config.targets)) {
  const proxy = await (config.mode === 'engine' ? startEngine : startSession)(port, config.delay);
  running.push(proxy);
  ports[name] = proxy.engine.address().port;
  if (config.record) record(proxy.engine);
}

function record(engine: ProxyEngine): void {
  const clients = new Map<number, string>();
  engine.on('open', (info: ConnectionInfo) => clients.set(info.conn, info.client));
  engine.on('close', (ev) => clients.delete(ev.conn));
  engine.on('callEnd', (call: CallRecord) => {
    calls.push({
      client: clients.get(call.conn) ?? '?',
      connCall: call.connCall,
      delayMs: call.delayMs,
      waitMs: (call.endMs ?? call.startMs) - call.startMs,
      outcome: call.outcome ?? 'pending',
    });
  });
}

serve({ ports }, { calls: () => calls, close: async () => void (await Promise.all(running.map((r) => r.close()))) });
