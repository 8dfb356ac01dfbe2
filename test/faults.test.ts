// Each fault (and the delay) through the real engine with real sockets, asserting only what a
// client or the upstream service can observe: timing, RST versus FIN, bytes, rates.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { ProxyEngine } from '../src/proxy/engine.js';
import { parseDelay } from '../src/policy/delay.js';
import { parseFaults } from '../src/policy/faults.js';
import { createPolicyPlanner, type PolicyOptions } from '../src/policy/planner.js';

interface Upstream {
  port: number;
  /** Connections the service accepted, with the ms (on performance.now()) it accepted them. */
  accepted: number[];
  /** Bytes the service received, over all connections. */
  received(): number;
}

/** A service on 127.0.0.1 that runs `onConnection` for each client; closed when the test ends. */
async function upstream(t: TestContext, onConnection: (socket: net.Socket) => void): Promise<Upstream> {
  const sockets = new Set<net.Socket>();
  const accepted: number[] = [];
  let received = 0;
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    accepted.push(performance.now());
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('data', (b: Buffer) => (received += b.length));
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onConnection(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return { port: (server.address() as net.AddressInfo).port, accepted, received: () => received };
}

/** Answers each chunk with the same bytes. */
const echo = (socket: net.Socket) => socket.on('data', (b: Buffer) => socket.write(b));

/** The engine with the policy planner in front of `port`; closed when the test ends. */
async function proxy(t: TestContext, port: number, options: { delay?: string; faults?: string[] } & Partial<Omit<PolicyOptions, 'delay' | 'faults'>>) {
  const policy = createPolicyPlanner({
    delay: parseDelay(options.delay ?? '0ms'),
    delayPer: options.delayPer ?? 'call',
    direction: options.direction ?? 'downstream',
    faults: parseFaults(options.faults ?? []),
    seed: options.seed ?? 1,
  });
  const engine = new ProxyEngine({ target: { host: '127.0.0.1', port }, listenHost: '127.0.0.1', listenPort: 0, planner: policy.planner });
  const address = await engine.listen();
  t.after(() => engine.close());
  return { engine, policy, port: address.port };
}

/** What a client saw on one connection. Times are ms since the client started connecting. */
interface Seen {
  bytes: number;
  data: Buffer;
  reads: number[];
  firstByteMs: number | null;
  lastByteMs: number | null;
  /** `fin`: the peer closed cleanly; `reset`: ECONNRESET (or EPIPE after it); `open`: still open at `until`. */
  ending: 'fin' | 'reset' | 'open';
  code?: string;
  endMs: number | null;
}

interface Client {
  socket: net.Socket;
  start: number;
  /** Waits for the connection to end, or `untilMs` after the start, whichever is first. */
  seen(untilMs?: number): Promise<Seen>;
  /** Waits for the next `n` bytes (in total since the last call) and returns the ms it took. */
  reply(n: number): Promise<number>;
}

function client(t: TestContext, port: number): Client {
  const start = performance.now();
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  t.after(() => {
    socket.destroy();
  });
  const seen: Seen = { bytes: 0, data: Buffer.alloc(0), reads: [], firstByteMs: null, lastByteMs: null, ending: 'open', endMs: null };
  let waiting: { n: number; since: number; resolve: (ms: number) => void } | null = null;
  let pendingBytes = 0;
  socket.on('data', (b: Buffer) => {
    const at = performance.now() - start;
    seen.bytes += b.length;
    seen.data = Buffer.concat([seen.data, b]);
    seen.reads.push(b.length);
    seen.firstByteMs ??= at;
    seen.lastByteMs = at;
    pendingBytes += b.length;
    if (waiting && pendingBytes >= waiting.n) {
      pendingBytes -= waiting.n;
      const w = waiting;
      waiting = null;
      w.resolve(performance.now() - w.since);
    }
  });
  socket.on('end', () => {
    seen.ending = 'fin';
    seen.endMs = performance.now() - start;
  });
  socket.on('error', (err: NodeJS.ErrnoException) => {
    if (seen.ending === 'open') seen.ending = 'reset';
    seen.code ??= err.code;
    seen.endMs ??= performance.now() - start;
  });
  // Not events.once: it rejects on 'error', and an error is what some tests wait for.
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return {
    socket,
    start,
    seen: async (untilMs = 10_000) => {
      await Promise.race([closed, sleep(Math.max(0, untilMs - (performance.now() - start)))]);
      return { ...seen };
    },
    reply: (n) =>
      new Promise((resolve) => {
        const since = performance.now();
        if (pendingBytes >= n) {
          pendingBytes -= n;
          resolve(0);
          return;
        }
        waiting = { n, since, resolve };
      }),
  };
}

/** Sends `text` and resolves with the ms until its echo is back. */
async function call(c: Client, text: string): Promise<number> {
  const answered = c.reply(Buffer.byteLength(text));
  c.socket.write(text);
  return answered;
}

function between(ms: number | null, low: number, high: number, what: string): void {
  assert.ok(ms !== null && ms >= low && ms < high, `${what}: ${ms} ms, expected ${low} to ${high}`);
}

describe('delay through the engine', () => {
  test('a fixed delay per call holds each response once', async (t) => {
    const up = await upstream(t, echo);
    const { port } = await proxy(t, up.port, { delay: '300ms' });
    const c = client(t, port);
    between(await call(c, 'one'), 280, 1500, 'call 1');
    between(await call(c, 'two'), 280, 1500, 'call 2');
  });

  test('a ramp follows the global call number across connections', async (t) => {
    const up = await upstream(t, echo);
    const { port } = await proxy(t, up.port, { delay: 'ramp(from=0ms, step=300ms, to=600ms)' });
    const a = client(t, port);
    between(await call(a, 'x'), 0, 250, 'call 1');
    const b = client(t, port);
    between(await call(b, 'y'), 280, 1000, 'call 2');
    between(await call(a, 'z'), 580, 1500, 'call 3');
  });

  test('setDelay reaches calls on an open connection', async (t) => {
    const up = await upstream(t, echo);
    const { port, policy } = await proxy(t, up.port, { delay: '0ms' });
    const c = client(t, port);
    between(await call(c, 'fast'), 0, 250, 'before');
    policy.setDelay(parseDelay('400ms'));
    between(await call(c, 'slow'), 380, 1500, 'after');
  });
});

describe('connection faults', () => {
  test('refuse: the client is reset and the service never sees a connection', async (t) => {
    const up = await upstream(t, echo);
    const { port } = await proxy(t, up.port, { faults: ['refuse'] });
    const c = client(t, port);
    c.socket.write('hello');
    const seen = await c.seen();
    assert.equal(seen.ending, 'reset');
    assert.equal(seen.code, 'ECONNRESET');
    assert.equal(seen.bytes, 0);
    assert.equal(up.accepted.length, 0);
  });

  test('connect-delay: nothing flows until the upstream connect, which waits', async (t) => {
    const up = await upstream(t, (socket) => socket.write('greeting'));
    const { port } = await proxy(t, up.port, { faults: ['connect-delay 500ms'] });
    const c = client(t, port);
    await once(c.socket, 'connect');
    await c.reply(8);
    const seen = await c.seen(0);
    between(seen.firstByteMs, 480, 2000, 'greeting');
    between(up.accepted[0] - c.start, 480, 2000, 'upstream accept');
  });

  test('connect-delay calls=2: only the connection whose next call is 2', async (t) => {
    const up = await upstream(t, echo);
    const { port } = await proxy(t, up.port, { faults: ['connect-delay 400ms calls=2'] });
    const first = client(t, port);
    between(await call(first, 'a'), 0, 300, 'connection 1, call 1');
    const second = client(t, port);
    between(await call(second, 'b'), 380, 1500, 'connection 2, call 2');
    const third = client(t, port);
    between(await call(third, 'c'), 0, 300, 'connection 3, call 3');
  });

  test('hang: the request is read but never forwarded or answered, and the connection stays open', async (t) => {
    const up = await upstream(t, echo);
    const { engine, port } = await proxy(t, up.port, { faults: ['hang'] });
    const c = client(t, port);
    c.socket.write('anyone there?');
    const seen = await c.seen(700);
    assert.equal(seen.ending, 'open');
    assert.equal(seen.bytes, 0);
    assert.equal(up.received(), 0);
    assert.equal(engine.counters().connectionsOpen, 1);
  });

  test('hang calls=2: call 1 is answered, call 2 never is', async (t) => {
    const up = await upstream(t, echo);
    const { port } = await proxy(t, up.port, { faults: ['hang calls=2'] });
    const c = client(t, port);
    between(await call(c, 'one'), 0, 300, 'call 1');
    c.socket.write('two');
    const seen = await c.seen(performance.now() - c.start + 700);
    assert.equal(seen.ending, 'open');
    assert.equal(seen.data.toString(), 'one');
    assert.equal(up.received(), 3);
  });

  test('reset after=: the client sees ECONNRESET at that time', async (t) => {
    const up = await upstream(t, echo);
    const { port } = await proxy(t, up.port, { faults: ['reset after=400ms'] });
    const c = client(t, port);
    between(await call(c, 'ping'), 0, 300, 'call before the reset');
    const seen = await c.seen();
    assert.equal(seen.ending, 'reset');
    assert.equal(seen.code, 'ECONNRESET');
    between(seen.endMs, 380, 1500, 'reset');
  });

  test('close after=: the client sees a clean FIN at that time', async (t) => {
    const up = await upstream(t, echo);
    const { port } = await proxy(t, up.port, { faults: ['close after=400ms'] });
    const c = client(t, port);
    between(await call(c, 'ping'), 0, 300, 'call before the close');
    const seen = await c.seen();
    assert.equal(seen.ending, 'fin');
    assert.equal(seen.code, undefined);
    between(seen.endMs, 380, 1500, 'FIN');
  });

  test('reset after= with calls=2: the timer starts at call 2', async (t) => {
    const up = await upstream(t, echo);
    const { port } = await proxy(t, up.port, { faults: ['reset after=300ms calls=2'] });
    const c = client(t, port);
    between(await call(c, 'one'), 0, 300, 'call 1');
    await sleep(500);
    assert.equal((await c.seen(0)).ending, 'open', 'no reset before call 2');
    const callTwo = performance.now() - c.start;
    c.socket.write('two');
    const seen = await c.seen();
    assert.equal(seen.ending, 'reset');
    between(seen.endMs === null ? null : seen.endMs - callTwo, 280, 1500, 'reset after call 2 started');
  });
});

describe('data faults', () => {
  test('bandwidth 64KB/s: 128 KB arrive at 64 KB/s within 10%', async (t) => {
    const total = 128_000;
    const up = await upstream(t, (socket) => socket.end(Buffer.alloc(total, 1)));
    const { port } = await proxy(t, up.port, { faults: ['bandwidth 64KB/s'] });
    const seen = await client(t, port).seen();
    assert.equal(seen.ending, 'fin');
    assert.equal(seen.bytes, total);
    // Rate over the pieces after the first: the first piece leaves at once.
    const rate = ((total - seen.reads[0]) / (seen.lastByteMs! - seen.firstByteMs!)) * 1000;
    assert.ok(Math.abs(rate - 64_000) <= 6400, `rate ${Math.round(rate)} B/s, expected 64000 ± 10%`);
  });

  test('bandwidth direction=upstream: the service receives at the rate, the client reads at full speed', async (t) => {
    const total = 32_000;
    const arrivals: number[] = [];
    let done: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const up = await upstream(t, (socket) => {
      let got = 0;
      socket.on('data', (b: Buffer) => {
        arrivals.push(performance.now());
        got += b.length;
        if (got >= total) {
          socket.end(Buffer.alloc(total, 2));
          done();
        }
      });
    });
    const { port } = await proxy(t, up.port, { faults: ['bandwidth 16KB/s direction=upstream'] });
    const c = client(t, port);
    c.socket.write(Buffer.alloc(total, 1));
    await finished;
    const seconds = (arrivals[arrivals.length - 1] - arrivals[0]) / 1000;
    const rate = (total - 800) / seconds;
    assert.ok(Math.abs(rate - 16_000) <= 1600, `upstream rate ${Math.round(rate)} B/s, expected 16000 ± 10%`);
    const seen = await c.seen();
    assert.equal(seen.bytes, total);
    assert.ok(seen.lastByteMs! - seen.firstByteMs! < 500, 'the response was not limited');
  });

  test('slice 64B delay=20ms: the reader sees small pieces with pauses', async (t) => {
    const up = await upstream(t, (socket) => socket.end(Buffer.alloc(640, 3)));
    const { port } = await proxy(t, up.port, { faults: ['slice 64B delay=20ms'] });
    const seen = await client(t, port).seen();
    assert.equal(seen.bytes, 640);
    assert.ok(seen.reads.every((n) => n <= 64), `reads ${seen.reads.join(',')}`);
    assert.ok(seen.reads.length >= 8, `only ${seen.reads.length} reads`);
    between(seen.lastByteMs! - seen.firstByteMs!, 160, 2000, 'spread of the pieces');
  });

  test('limit-data 1000B: exactly 1000 bytes, then a clean close', async (t) => {
    const up = await upstream(t, (socket) => socket.write(Buffer.alloc(5000, 4)));
    const { port } = await proxy(t, up.port, { faults: ['limit-data 1000B'] });
    const seen = await client(t, port).seen();
    assert.equal(seen.bytes, 1000);
    assert.equal(seen.ending, 'fin');
  });

  test('slow-close 800ms: the FIN after the last byte waits', async (t) => {
    const up = await upstream(t, (socket) => socket.end('bye'));
    const { port } = await proxy(t, up.port, { faults: ['slow-close 800ms'] });
    const seen = await client(t, port).seen();
    assert.equal(seen.data.toString(), 'bye');
    assert.equal(seen.ending, 'fin');
    between(seen.endMs! - seen.lastByteMs!, 780, 2500, 'FIN after the last byte');
  });

  test('without slow-close the FIN follows at once', async (t) => {
    const up = await upstream(t, (socket) => socket.end('bye'));
    const { port } = await proxy(t, up.port, {});
    const seen = await client(t, port).seen();
    assert.equal(seen.ending, 'fin');
    between(seen.endMs! - seen.lastByteMs!, 0, 300, 'FIN after the last byte');
  });
});

describe('probability', () => {
  async function outcomes(t: TestContext, line: string, n: number, seed = 1): Promise<boolean[]> {
    const up = await upstream(t, echo);
    const { port } = await proxy(t, up.port, { faults: [line], seed });
    const refused: boolean[] = [];
    for (let i = 0; i < n; i++) {
      const c = client(t, port);
      c.socket.write('x');
      const answered = c.reply(1).then(() => false);
      const reset = c.seen().then((s) => s.ending === 'reset');
      refused.push(await Promise.race([answered, reset]));
      c.socket.destroy();
    }
    return refused;
  }

  test('probability=0% never, 100% always', async (t) => {
    assert.deepEqual(await outcomes(t, 'refuse probability=0%', 5), [false, false, false, false, false]);
    assert.deepEqual(await outcomes(t, 'refuse probability=100%', 5), [true, true, true, true, true]);
  });

  test('refuse calls=2..3: refused attempts count as calls, so the outage ends', async (t) => {
    // Call 1 answered; the next two attempts are refused; after them connections work again.
    assert.deepEqual(await outcomes(t, 'refuse calls=2..3', 5), [false, true, true, false, false]);
  });

  test('probability=50%: the connections the seed picks, the same on every run', async (t) => {
    const line = 'refuse probability=50%';
    const expected = Array.from({ length: 12 }, () => false);
    const dry = createPolicyPlanner({ delay: parseDelay('0'), delayPer: 'call', direction: 'downstream', faults: parseFaults(line), seed: 5 });
    expected.forEach((_, i) => (expected[i] = dry.planner({ conn: i + 1, client: 'x', nowMs: 0, callsStarted: 0 }).refuse === true));
    assert.ok(expected.includes(true) && expected.includes(false), 'seed 5 should mix both outcomes');
    assert.deepEqual(await outcomes(t, line, 12, 5), expected);
  });
});
