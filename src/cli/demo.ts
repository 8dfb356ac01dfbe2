// `slow-proxy demo` (`npm start`): the whole idea in a few seconds, with nothing installed. A tiny
// line service, the proxy in front of it with a delay that climbs and falls, and an app that gives
// up after 1 s and reconnects; each call is printed as it ends, then the proxy's report.
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { CallRecord } from '../proxy/types.js';
import { formatMs } from '../render/format.js';
import { Session } from '../session.js';
import { formatAddress, parseSettings } from '../settings.js';
import { prepareFiles } from './files.js';
import { stopAndReport } from './report.js';

const CALLS = 15;
const APP_TIMEOUT_MS = 1000;
/** Climbs past the app's timeout and back: calls 5 to 11 take longer than 1 s. */
const DEMO_DELAY = 'ramp(from=0ms, step=300ms, to=2s)';
const DEMO_SEED = '42';
const DEMO_MAX_WAIT = '1.5s';
/** How long to wait for the proxy's record of a call after the app saw it end. */
const RECORD_WAIT_MS = 2000;

type Outcome = { kind: 'answered'; reply: string } | { kind: 'gave up' } | { kind: 'closed' };

export async function runDemo(): Promise<number> {
  const service = await startLineService();
  const settings = parseSettings({
    target: formatAddress(service.address),
    delay: DEMO_DELAY,
    seed: DEMO_SEED,
    'max-wait': DEMO_MAX_WAIT,
    name: 'demo',
  });
  const files = prepareFiles(settings, {});
  const session = await Session.start(settings, files, { log: (line) => process.stderr.write(`slow-proxy: ${line}\n`) });
  const records = new CallRecords(session);
  const out = (line = ''): void => void process.stdout.write(`${line}\n`);

  out('slow-proxy demo');
  out(`  service  ${formatAddress(service.address)}  a tiny line service: "GET n" -> "OK n", at once`);
  out(`  proxy    ${formatAddress(session.address)}  in front of it: delay ${settings.delay.text} per call, seed ${settings.seed}, max-wait ${DEMO_MAX_WAIT}`);
  out(`  app      ${CALLS} calls through the proxy, one at a time; gives up after ${formatMs(APP_TIMEOUT_MS)} and reconnects`);
  out();
  out(`${'call'.padStart(4)}  ${'delay'.padStart(7)}  ${'waited'.padStart(7)}  outcome`);

  let socket: net.Socket | null = null;
  for (let n = 1; n <= CALLS; n += 1) {
    socket ??= await connect(session.address.port);
    const started = performance.now();
    const outcome = await ask(socket, `GET ${n}`, APP_TIMEOUT_MS);
    const waited = performance.now() - started;
    if (outcome.kind !== 'answered') {
      socket.destroy();
      socket = null;
    }
    const record = await records.ended(n);
    const what =
      outcome.kind === 'answered'
        ? `answered "${outcome.reply}"`
        : outcome.kind === 'gave up'
          ? `gave up after ${formatMs(APP_TIMEOUT_MS)}; reconnecting`
          : 'the connection closed; reconnecting';
    out(`${String(n).padStart(4)}  ${(record ? formatMs(record.delayMs) : '?').padStart(7)}  ${formatMs(waited).padStart(7)}  ${what}`);
  }
  socket?.destroy();

  const report = await stopAndReport(session);
  await service.close();
  out();
  out("The proxy's report (what slow-proxy prints when stopped):");
  out();
  out(report.text.trimEnd());
  out();
  out(`Try it on a real service: slow-proxy --target localhost:5432 --delay '${DEMO_DELAY}' --max-wait ${DEMO_MAX_WAIT}`);
  out('(then point the app at the printed address; slow-proxy --help has the delay forms, faults and ctl).');
  return 0;
}

/** The proxy's record of each call, by call number, as the engine ends them. */
class CallRecords {
  private readonly done = new Map<number, CallRecord>();
  private readonly waiting = new Map<number, (record: CallRecord) => void>();

  constructor(session: Session) {
    session.engine.on('callEnd', (record) => {
      this.done.set(record.call, record);
      this.waiting.get(record.call)?.(record);
    });
  }

  /** The record of call `n` once it ended; null if the proxy has not ended it in time. */
  ended(n: number): Promise<CallRecord | null> {
    const known = this.done.get(n);
    if (known) return Promise.resolve(known);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(null), RECORD_WAIT_MS);
      this.waiting.set(n, (record) => {
        clearTimeout(timer);
        this.waiting.delete(n);
        resolve(record);
      });
    });
  }
}

/** Sends one line and waits for one line back, at most `timeoutMs`. */
function ask(socket: net.Socket, line: string, timeoutMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    let buffered = '';
    const finish = (outcome: Outcome): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      resolve(outcome);
    };
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString('utf8');
      const end = buffered.indexOf('\n');
      if (end >= 0) finish({ kind: 'answered', reply: buffered.slice(0, end) });
    };
    const onClose = (): void => finish({ kind: 'closed' });
    const timer = setTimeout(() => finish({ kind: 'gave up' }), timeoutMs);
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.write(`${line}\n`);
  });
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      socket.off('error', reject);
      // A reset after the app gave up is expected; the outcome already says what happened.
      socket.on('error', () => {});
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** "GET n" -> "OK n", one reply per line, at once. */
async function startLineService(): Promise<{ address: { host: string; port: number }; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buffered = '';
    socket.on('data', (chunk) => {
      buffered += chunk.toString('utf8');
      let end: number;
      while ((end = buffered.indexOf('\n')) >= 0) {
        const request = buffered.slice(0, end).trim();
        buffered = buffered.slice(end + 1);
        socket.write(`${request.replace(/^GET\b/, 'OK')}\n`);
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    address: { host: '127.0.0.1', port },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
