// `npm run bench`: the proxy against a direct connection to the same upstream, in one run, on 127.0.0.1.
// Writes docs/benchmarks.md. Three processes, as in a job: this one is the app (the client), the
// upstream service runs in its own process, and so does the proxy.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Child, type Memory } from './ipc.js';
import { fixed, max, median, min, percentile, ratio, signed } from './numbers.js';
import type { ProxyConfig } from './proxy-process.js';
import { DIST, daemonStartStop, distBuilt, mainAndPost } from './startup.js';
import { summaryOf100kCalls } from './summary-size.js';
import { MiB, bothWays, closeAll, concurrentCalls, connect, download, idleConnections, pingPongs, upload } from './traffic.js';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const OUT = path.join(ROOT, 'docs', 'benchmarks.md');
const README = path.join(ROOT, 'README.md');
const README_START = '<!-- bench:start (written by npm run bench) -->';
const README_END = '<!-- bench:end -->';

const BULK_BYTES = 512 * MiB;
const BULK_WARMUP_BYTES = 64 * MiB;
const BULK_RUNS = 3;
const PING_WARMUP = 2_000;
const PINGS = 20_000;
/** The round trips are measured in this many rounds, the paths taking turns, so a noisy moment hits them alike. */
const PING_ROUNDS = 10;
const PING_BYTES = 64;
/** Each case: `connections` clients at once, each making `calls` sequential calls. */
const DELAY_CASES = [
  { delay: '100ms', connections: 50, calls: 12 },
  { delay: '10ms', connections: 50, calls: 12 },
  { delay: '10ms', connections: 1, calls: 500 },
  { delay: 'ramp(from=0ms, step=10ms, to=200ms)', connections: 50, calls: 12 },
];
const IDLE_CONNECTIONS = 2_000;
const IDLE_WARMUP = 200;
const STARTUP_RUNS = 5;

/** The proxies measured next to the direct path. */
const PROXIES = [
  { mode: 'engine', label: 'proxy', what: 'ProxyEngine with the real policy planner, `delay: 0ms`' },
  { mode: 'session', label: 'proxy + recording', what: "the daemon's Session: the same plus statistics, the traffic log on disk and the stats file every second" },
] as const;

function progress(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function startProxy(mode: ProxyConfig['mode'], targets: Record<string, number>, delay = '0ms', record = false): Promise<Child> {
  return Child.start('proxy-process.ts', { targets, delay, mode, record } satisfies ProxyConfig);
}

// ---- throughput -------------------------------------------------------------------------------

interface Path {
  label: string;
  ports: Record<string, number>;
}

type Transfer = (port: number, bytes: number) => Promise<number>;

const TRANSFERS: Array<{ name: string; upstream: string; run: Transfer }> = [
  { name: 'client → service', upstream: 'sink', run: upload },
  { name: 'service → client', upstream: 'source', run: download },
  { name: 'both ways at once (each way)', upstream: 'echo', run: bothWays },
];

/** MiB/s of each run, by transfer and path; paths interleaved run by run so drift hits them alike. */
async function throughput(paths: Path[]): Promise<Map<string, Map<string, number[]>>> {
  const results = new Map<string, Map<string, number[]>>();
  for (const transfer of TRANSFERS) {
    const byPath = new Map<string, number[]>(paths.map((p) => [p.label, []]));
    for (const p of paths) await transfer.run(p.ports[transfer.upstream], BULK_WARMUP_BYTES);
    for (let run = 0; run < BULK_RUNS; run += 1) {
      for (const p of paths) {
        const seconds = await transfer.run(p.ports[transfer.upstream], BULK_BYTES);
        byPath.get(p.label)!.push(BULK_BYTES / MiB / seconds);
      }
    }
    progress(`throughput ${transfer.name}: ${paths.map((p) => `${p.label} ${fixed(median(byPath.get(p.label)!))} MiB/s`).join(', ')}`);
    results.set(transfer.name, byPath);
  }
  return results;
}

// ---- latency ----------------------------------------------------------------------------------

/** Round-trip times in µs, by path label. */
async function latency(paths: Path[]): Promise<Map<string, number[]>> {
  const sockets = await Promise.all(paths.map((p) => connect(p.ports.echo)));
  for (const socket of sockets) await pingPongs(socket, PING_WARMUP, PING_BYTES);
  const times = new Map<string, number[]>(paths.map((p) => [p.label, []]));
  for (let round = 0; round < PING_ROUNDS; round += 1) {
    for (const [i, p] of paths.entries()) times.get(p.label)!.push(...(await pingPongs(sockets[i], PINGS / PING_ROUNDS, PING_BYTES)));
  }
  for (const socket of sockets) socket.destroy();
  return times;
}

// ---- delay accuracy ---------------------------------------------------------------------------

interface AccuracySample {
  connCall: number;
  /** Client-measured wait minus the delay the policy drew, ms. */
  error: number;
  /** Client-measured wait minus the wait the proxy recorded, ms. */
  recordingGap: number;
}

type DelayCase = (typeof DELAY_CASES)[number];

interface Accuracy {
  delayCase: DelayCase;
  samples: AccuracySample[];
}

async function delayAccuracy(echoPort: number, delayCase: DelayCase): Promise<Accuracy> {
  const { delay } = delayCase;
  const proxy = await startProxy('engine', { echo: echoPort }, delay, true);
  try {
    const measured = await concurrentCalls(proxy.ports.echo, delayCase.connections, delayCase.calls);
    await sleep(50);
    const recorded = new Map((await proxy.calls()).map((call) => [`${call.client}#${call.connCall}`, call]));
    const samples = measured.map((call): AccuracySample => {
      const seen = recorded.get(`${call.client}#${call.connCall}`);
      if (!seen || seen.outcome !== 'answered') throw new Error(`delay ${delay}: the proxy has no answered call ${call.connCall} from ${call.client}`);
      return { connCall: call.connCall, error: call.waitMs - seen.delayMs, recordingGap: call.waitMs - seen.waitMs };
    });
    const errors = samples.map((x) => x.error);
    progress(`delay ${delay}: ${errors.length} calls, error p50 ${fixed(median(errors), 2)} ms, p99 ${fixed(percentile(errors, 99), 2)} ms`);
    return { delayCase, samples };
  } finally {
    await proxy.stop();
  }
}

// ---- memory -----------------------------------------------------------------------------------

interface MemoryGrowth {
  label: string;
  what: string;
  before: Memory;
  after: Memory;
}

/** Memory of `owner` before and after `IDLE_CONNECTIONS` idle connections through `port`. */
async function memoryPerConnection(owner: Child, port: number, label: string, what: string): Promise<MemoryGrowth> {
  await closeAll(await idleConnections(port, IDLE_WARMUP));
  await sleep(200);
  const before = await owner.memory();
  const sockets = await idleConnections(port, IDLE_CONNECTIONS);
  await sleep(500);
  const after = await owner.memory();
  await closeAll(sockets);
  const perConn = (after.rss - before.rss) / IDLE_CONNECTIONS / 1024;
  progress(`memory ${label}: ${fixed(perConn, 1)} KiB RSS per connection`);
  return { label, what, before, after };
}

// ---- report -----------------------------------------------------------------------------------

function table(header: string[], rows: string[][], right: number[] = []): string {
  const rule = header.map((_, i) => (right.includes(i) ? '---:' : '---'));
  return [header, rule, ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

function machine(loadAtStart: number[]): string[][] {
  const cpus = os.cpus();
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8' }).trim();
    if (dirty) commit += ' (with uncommitted changes in src/)';
  } catch {
    /* not a git checkout */
  }
  return [
    ['CPUs', `${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown'}`],
    ['Memory', `${fixed(os.totalmem() / 1024 ** 3, 1)} GiB`],
    ['OS', `${os.type()} ${os.release()} (${os.arch()})`],
    ['Node.js', process.version],
    ['Load average at the start', `${loadAtStart.map((n) => n.toFixed(2)).join(', ')} (1, 5, 15 min)`],
    ['Date', new Date().toISOString().replace(/\.\d+Z$/, 'Z')],
    ['Source', `commit ${commit}`],
  ];
}

function runsOf(values: number[], decimals = 0): string {
  return values.map((v) => fixed(v, decimals)).join(', ');
}

async function main(): Promise<void> {
  const started = Date.now();
  const loadAtStart = os.loadavg();
  const sections: string[] = [];
  const headline: string[] = [];

  const upstream = await Child.start('upstream-process.ts', {});
  const direct: Path = { label: 'direct', ports: upstream.ports };
  const proxies: Child[] = [];
  const paths: Path[] = [direct];
  for (const proxy of PROXIES) {
    const child = await startProxy(proxy.mode, upstream.ports);
    proxies.push(child);
    paths.push({ label: proxy.label, ports: child.ports });
  }

  // Throughput
  const bulk = await throughput(paths);
  const proxyLabels = PROXIES.map((p) => p.label);
  sections.push(
    '## Throughput',
    `${fixed(BULK_BYTES / MiB)} MiB through one connection, 64 KiB writes; median of ${BULK_RUNS} runs after a ${fixed(BULK_WARMUP_BYTES / MiB)} MiB warm-up ` +
      '(all runs in brackets). Timed from the first byte written to the last byte received (upload: to the service\'s byte count).',
    table(
      ['Transfer', 'direct MiB/s', ...proxyLabels.flatMap((l) => [`${l} MiB/s`, `${l} / direct`])],
      TRANSFERS.map((t) => {
        const byPath = bulk.get(t.name)!;
        const base = median(byPath.get('direct')!);
        return [
          t.name,
          `${fixed(base)} (${runsOf(byPath.get('direct')!)})`,
          ...proxyLabels.flatMap((l) => [`${fixed(median(byPath.get(l)!))} (${runsOf(byPath.get(l)!)})`, ratio(median(byPath.get(l)!) / base)]),
        ];
      }),
      [1, 2, 3, 4, 5],
    ),
  );
  const oneWay = bulk.get(TRANSFERS[0].name)!;
  const oneWayRatio = (label: string) => ratio(median(oneWay.get(label)!) / median(oneWay.get('direct')!));
  headline.push(
    `**Throughput**, one connection, client → service: ${fixed(median(oneWay.get('proxy')!))} MiB/s through the proxy, ` +
      `${fixed(median(oneWay.get('direct')!))} MiB/s direct (${oneWayRatio('proxy')}; ${oneWayRatio('proxy + recording')} with recording).`,
  );

  // Latency
  const pings = await latency(paths);
  progress(`latency p50: ${paths.map((p) => `${p.label} ${fixed(median(pings.get(p.label)!))} µs`).join(', ')}`);
  const d50 = median(pings.get('direct')!);
  const d99 = percentile(pings.get('direct')!, 99);
  sections.push(
    '## Added latency',
    `${fixed(PINGS)} sequential request/response round trips of ${PING_BYTES} B on one connection per path to an echo service, after ${fixed(PING_WARMUP)} warm-up round trips; ` +
      `each round trip timed by the client. Measured in ${PING_ROUNDS} rounds of ${fixed(PINGS / PING_ROUNDS)}, the paths taking turns.`,
    table(
      ['Path', 'p50 µs', 'p99 µs', 'max µs', 'added p50 µs', 'added p99 µs'],
      paths.map((p) => {
        const t = pings.get(p.label)!;
        const p50 = median(t);
        const p99 = percentile(t, 99);
        const isDirect = p.label === 'direct';
        return [p.label, fixed(p50), fixed(p99), fixed(max(t)), isDirect ? '' : signed(p50 - d50, 0), isDirect ? '' : signed(p99 - d99, 0)];
      }),
      [1, 2, 3, 4, 5],
    ),
  );
  const proxyPings = pings.get('proxy')!;
  headline.push(
    `**Added latency** per ${PING_BYTES}-byte round trip: ${signed(median(proxyPings) - d50, 0)} µs at p50, ${signed(percentile(proxyPings, 99) - d99, 0)} µs at p99 ` +
      `(${signed(median(pings.get('proxy + recording')!) - d50, 0)} µs at p50 with recording).`,
  );

  for (const child of proxies) await child.stop();

  // Delay accuracy
  const accuracy: Accuracy[] = [];
  for (const delayCase of DELAY_CASES) accuracy.push(await delayAccuracy(upstream.ports.echo, delayCase));
  const accuracyRow = (delayCase: DelayCase, which: string, samples: AccuracySample[]): string[] => {
    const errors = samples.map((x) => x.error);
    const gaps = samples.map((x) => x.recordingGap);
    return [
      `\`${delayCase.delay}\``,
      `${delayCase.connections} × ${delayCase.calls}`,
      which,
      String(samples.length),
      fixed(median(errors), 2),
      fixed(percentile(errors, 99), 2),
      fixed(max(errors), 2),
      fixed(min(errors), 2),
      fixed(percentile(gaps, 99), 2),
    ];
  };
  sections.push(
    '## Delay accuracy',
    `Connections opened at once (connections × calls), each making sequential ${PING_BYTES}-byte calls to an echo service through a fresh proxy ` +
      '(`delay-per: call`, `direction: upstream`). Error = the wait the client measured − the delay the policy drew for that call ' +
      '(matched by the client\'s address and the call\'s number on its connection), so it includes the round trip itself. ' +
      'The last column is the client\'s wait minus the wait the proxy recorded for its statistics. ' +
      'With 50 connections opened at once, the first call on each also waits while the just-started proxy is busy accepting the burst and ' +
      'connecting each one upstream: those milliseconds pass before the proxy reads the call\'s first byte, so its recorded wait does not include them.',
    table(
      ['`delay`', 'connections × calls', 'calls', 'n', 'error p50 ms', 'error p99 ms', 'error max ms', 'error min ms', 'client − recorded wait, p99 ms'],
      accuracy.flatMap((a) =>
        a.delayCase.connections === 1
          ? [accuracyRow(a.delayCase, 'all', a.samples)]
          : [
              accuracyRow(a.delayCase, 'all', a.samples),
              accuracyRow(a.delayCase, 'first on each connection', a.samples.filter((x) => x.connCall === 1)),
              accuracyRow(a.delayCase, 'the others', a.samples.filter((x) => x.connCall > 1)),
            ],
      ),
      [3, 4, 5, 6, 7, 8],
    ),
  );
  const hundred = accuracy[0];
  const hundredErrors = hundred.samples.map((x) => x.error);
  const hundredLater = hundred.samples.filter((x) => x.connCall > 1).map((x) => x.error);
  headline.push(
    `**Delay accuracy**, \`delay: ${hundred.delayCase.delay}\`, ${hundred.delayCase.connections} connections at once: the app waited ` +
      `${fixed(median(hundredErrors), 1)} ms more than the delay at p50, ${fixed(percentile(hundredErrors, 99), 1)} ms at p99 ` +
      `(${fixed(percentile(hundredLater, 99), 1)} ms at p99 after each connection's first call).`,
  );
  await upstream.stop();

  // Memory, with a fresh upstream so earlier transfers do not blur its figures
  const idleUpstream = await Child.start('upstream-process.ts', {});
  const memory: MemoryGrowth[] = [
    await memoryPerConnection(idleUpstream, idleUpstream.ports.echo, 'direct', 'the upstream service process (one socket per connection)'),
  ];
  for (const proxy of PROXIES) {
    const child = await startProxy(proxy.mode, { echo: idleUpstream.ports.echo });
    memory.push(await memoryPerConnection(child, child.ports.echo, proxy.label, 'the proxy process (two sockets per connection)'));
    await child.stop();
  }
  const perConn = (m: MemoryGrowth, key: keyof Memory) => (m.after[key] - m.before[key]) / IDLE_CONNECTIONS / 1024;
  sections.push(
    '## Memory per connection',
    `${fixed(IDLE_CONNECTIONS)} connections opened (each made one ${PING_BYTES}-byte call) and left idle, after ${IDLE_WARMUP} connections opened and closed ` +
      'as a warm-up; growth of the process\'s RSS and JS heap, each read after a full garbage collection, divided by the connections. ' +
      'For the direct path the process measured is the upstream service (a plain Node.js echo server), the cheapest thing that holds a TCP connection in Node.js.',
    table(
      ['Path', 'process measured', 'RSS before MiB', 'RSS after MiB', 'RSS KiB / connection', 'heap KiB / connection', 'RSS vs direct'],
      memory.map((m) => [
        m.label,
        m.what,
        fixed(m.before.rss / MiB, 1),
        fixed(m.after.rss / MiB, 1),
        fixed(perConn(m, 'rss'), 1),
        fixed(perConn(m, 'heapUsed'), 1),
        m.label === 'direct' ? '' : ratio(perConn(m, 'rss') / perConn(memory[0], 'rss')),
      ]),
      [2, 3, 4, 5, 6],
    ),
  );
  headline.push(
    `**Memory**: ${fixed(perConn(memory[1], 'rss'), 1)} KiB of RSS per idle proxied connection (${fixed(perConn(memory[2], 'rss'), 1)} KiB with recording), ` +
      `${fixed(perConn(memory[0], 'rss'), 1)} KiB for a plain Node.js server's connection.`,
  );

  // Start-up
  if (distBuilt()) {
    const daemon: Array<{ readyMs: number; stopMs: number }> = [];
    const steps: Array<{ mainMs: number; postMs: number; summaryBytes: number }> = [];
    await daemonStartStop(idleUpstream.ports.echo); // warm the file cache; not counted
    for (let i = 0; i < STARTUP_RUNS; i += 1) daemon.push(await daemonStartStop(idleUpstream.ports.echo));
    for (let i = 0; i < STARTUP_RUNS; i += 1) steps.push(await mainAndPost(idleUpstream.ports.echo));
    const rows: Array<[string, number[]]> = [
      ['daemon: spawn → listening (status file written)', daemon.map((d) => d.readyMs)],
      ['daemon: SIGTERM → exited (final stats written)', daemon.map((d) => d.stopMs)],
      ['main step: `node dist/main/index.js` → exited, proxy listening', steps.map((s) => s.mainMs)],
      ['post step: `node dist/post/index.js` → exited (daemon stopped, summary written)', steps.map((s) => s.postMs)],
    ];
    sections.push(
      '## Start-up',
      `The bundles in \`dist/\`, median of ${STARTUP_RUNS} runs (all runs in brackets) after one uncounted daemon start. The daemon is spawned as ` +
        '`startDaemon` does (detached, output to a log file) and its status file polled every 2 ms. The steps run with `INPUT_*` variables, ' +
        '`GITHUB_OUTPUT`/`GITHUB_STATE`/`GITHUB_ENV`/`GITHUB_STEP_SUMMARY` files and `RUNNER_TEMP`, as the runner gives them; one call goes through ' +
        'the proxy between main and post, and post gets main\'s state as `STATE_*` variables.',
      table(['Step', 'median ms', 'runs ms'], rows.map(([name, values]) => [name, fixed(median(values)), runsOf(values)]), [1]),
    );
    headline.push(`**Start-up**: the main step takes ${fixed(median(steps.map((s) => s.mainMs)))} ms, the post step ${fixed(median(steps.map((s) => s.postMs)))} ms.`);
    progress(`start-up: daemon ${fixed(median(daemon.map((d) => d.readyMs)))} ms, main ${fixed(median(steps.map((s) => s.mainMs)))} ms`);
  } else {
    sections.push('## Start-up', `Skipped: \`${path.relative(ROOT, DIST)}/\` is not built (run \`npm run build\` first).`);
    progress('start-up: skipped, dist/ is not built');
  }
  await idleUpstream.stop();

  // Job summary of a long run
  const summary = summaryOf100kCalls();
  sections.push(
    '## Job summary of a 100 000-call run',
    `${fixed(summary.calls)} synthetic calls on ${fixed(summary.connections)} connections (long-tailed delays, some gave up, some upstream-closed, errors), ` +
      'fed to the `StatsRecorder` the daemon uses, then rendered as the post step does, with every section filled: `max-wait` and baseline gates, ' +
      'the timeline chart, the slowest calls, the connection rows and 50 payload previews.',
    table(
      ['Figure', 'measured', 'required'],
      [
        ['job summary size', `${fixed(summary.summaryBytes / 1000, 1)} KB`, 'under 200 KB'],
        ['snapshot + gates + render', `${fixed(summary.snapshotMs + summary.renderMs, 1)} ms`, 'under 1 s'],
        ['recording the 100 000 calls', `${fixed(summary.recordMs)} ms`, ''],
        ['stats file size (JSON, indented)', `${fixed(summary.statsFileBytes / 1000, 1)} KB`, ''],
      ],
      [1],
    ),
  );
  headline.push(
    `**Job summary** of a ${fixed(summary.calls)}-call run: ${fixed(summary.summaryBytes / 1000, 1)} KB, rendered in ${fixed(summary.snapshotMs + summary.renderMs, 1)} ms.`,
  );
  progress(`summary: ${fixed(summary.summaryBytes / 1000, 1)} KB in ${fixed(summary.snapshotMs + summary.renderMs, 1)} ms`);

  const intro = [
    '# Benchmarks',
    '',
    '<!-- Written by `npm run bench` (test/bench/run.ts); edit that file, not this one. -->',
    '',
    'The proxy measured against a direct connection to the same upstream, in the same run, all on 127.0.0.1. ' +
      'Three processes, as in a job: the bench itself is the app (the client), the upstream service runs in a process of its own, and so does the proxy. ' +
      'Two proxies are measured:',
    '',
    ...PROXIES.map((p) => `- **${p.label}**: ${p.what}.`),
    '',
    'In short:',
    '',
    ...headline.map((line) => `- ${line}`),
    '',
    `The whole bench took ${fixed((Date.now() - started) / 1000)} s. Numbers move from run to run on a shared machine; every run is listed where there are few.`,
    '',
    '## Machine',
    '',
    table(['', ''], machine(loadAtStart)),
  ];
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  fs.writeFileSync(OUT, `${[...intro, '', sections.join('\n\n')].join('\n')}\n`);
  progress(`wrote ${path.relative(ROOT, OUT)} in ${fixed((Date.now() - started) / 1000)} s`);
  updateReadme(headline, `${os.cpus().length} CPUs, Node.js ${process.version}`);
}

/** The README's benchmark lines, between its markers, so they never disagree with docs/benchmarks.md. */
function updateReadme(headline: string[], machineText: string): void {
  const text = fs.readFileSync(README, 'utf8');
  const start = text.indexOf(README_START);
  const end = text.indexOf(README_END);
  if (start === -1 || end < start) {
    progress(`README.md has no ${README_START} ... ${README_END} block; left as it is`);
    return;
  }
  const block = [README_START, `From the last run (${machineText}):`, '', ...headline.map((line) => `- ${line}`), README_END].join('\n');
  fs.writeFileSync(README, text.slice(0, start) + block + text.slice(end + README_END.length));
  progress('updated the benchmark lines of README.md');
}

await main();
