// The proxy engine with real sockets on 127.0.0.1: bytes, order, half-close, resets,
// backpressure, concurrency and the call outcomes the statistics rest on.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { ProxyEngine } from '../src/proxy/engine.js';
import type { CallRecord, Planner } from '../src/proxy/types.js';

const MiB = 1024 * 1024;

interface Upstream {
  port: number;
  server: net.Server;
  sockets: Set<net.Socket>;
  close(): Promise<void>;
}

async function upstream(onConnection: (socket: net.Socket) => void): Promise<Upstream> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onConnection(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    server,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

async function startProxy(port: number, planner?: Planner, extra: Partial<ConstructorParameters<typeof ProxyEngine>[0]> = {}) {
  const engine = new ProxyEngine({ target: { host: '127.0.0.1', port }, listenHost: '127.0.0.1', listenPort: 0, planner, ...extra });
  const address = await engine.listen();
  const calls: CallRecord[] = [];
  engine.on('callEnd', (c) => calls.push({ ...c }));
  return { engine, address, calls };
}

async function connect(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  const socket = net.connect({ host, port, allowHalfOpen: true });
  await once(socket, 'connect');
  return socket;
}

/** Resolves with everything read until the peer's FIN. */
function readAll(socket: net.Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    socket.on('data', (b: Buffer) => parts.push(b));
    socket.once('end', () => resolve(Buffer.concat(parts)));
    socket.once('error', reject);
  });
}

/** Hashes everything read until FIN, without keeping it. */
function hashAll(socket: net.Socket): Promise<{ hash: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    let bytes = 0;
    socket.on('data', (b: Buffer) => {
      h.update(b);
      bytes += b.length;
    });
    socket.once('end', () => resolve({ hash: h.digest('hex'), bytes }));
    socket.once('error', reject);
  });
}

/** Writes `total` random bytes in random chunk sizes, honouring backpressure; returns their hash. */
async function sendRandom(socket: net.Socket, total: number, end = true): Promise<string> {
  const h = createHash('sha256');
  const pool = randomBytes(4 * MiB);
  let sent = 0;
  while (sent < total) {
    const size = Math.min(total - sent, 1 + Math.floor(Math.random() * 128 * 1024));
    const offset = Math.floor(Math.random() * (pool.length - size));
    const chunk = pool.subarray(offset, offset + size);
    h.update(chunk);
    sent += size;
    if (!socket.write(chunk)) await once(socket, 'drain');
  }
  if (end) socket.end();
  return h.digest('hex');
}

function errorCode(socket: net.Socket): Promise<string | undefined> {
  return new Promise((resolve) => {
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code));
    socket.once('close', () => resolve(undefined));
  });
}

const randomChunkDelays: Planner = () => ({
  up: { hold: () => Math.random() * 4 },
  down: { hold: () => Math.random() * 4 },
});

describe('engine: bytes and order', () => {
  test('64 MiB each way with random per-chunk delays arrives byte-identical and in order', async () => {
    let upstreamReceived: Promise<{ hash: string; bytes: number }> | undefined;
    let upstreamSent: Promise<string> | undefined;
    const up = await upstream((socket) => {
      upstreamReceived = hashAll(socket);
      upstreamSent = sendRandom(socket, 64 * MiB);
    });
    const { engine, address } = await startProxy(up.port, randomChunkDelays);
    try {
      const client = await connect(address.port);
      const clientReceived = hashAll(client);
      const clientSent = await sendRandom(client, 64 * MiB);
      const [down, upHash] = await Promise.all([clientReceived, upstreamReceived!]);
      assert.equal(upHash.bytes, 64 * MiB);
      assert.equal(upHash.hash, clientSent);
      assert.equal(down.bytes, 64 * MiB);
      assert.equal(down.hash, await upstreamSent!);
      const c = engine.counters();
      assert.equal(c.bytesUp, 64 * MiB);
      assert.equal(c.bytesDown, 64 * MiB);
    } finally {
      await engine.close();
      await up.close();
    }
  });

  test('a later chunk never overtakes an earlier one whatever the delays drawn', async () => {
    // Decreasing holds: 200 ms, then 150, 100, ... A naive per-chunk timer would reorder them.
    let n = 0;
    const planner: Planner = () => ({ up: { hold: () => Math.max(0, 200 - 50 * n++) }, down: { hold: () => 0 } });
    const up = await upstream((socket) => socket.pipe(socket));
    const { engine, address } = await startProxy(up.port, planner);
    try {
      const client = await connect(address.port);
      client.setNoDelay(true);
      const received = readAll(client);
      for (let i = 0; i < 6; i++) {
        client.write(`<${i}>`);
        await new Promise((r) => setTimeout(r, 15));
      }
      client.end();
      assert.equal((await received).toString(), '<0><1><2><3><4><5>');
    } finally {
      await engine.close();
      await up.close();
    }
  });

  test('per-call hold: chunks of a call arriving after its release pass without new delay', async () => {
    const planner: Planner = () => ({ up: { hold: (ctx) => (ctx.unitStart ? 300 : 0) }, down: { hold: () => 0 } });
    const up = await upstream((socket) => {
      const start = Date.now();
      const arrivals: number[] = [];
      socket.on('data', () => {
        arrivals.push(Date.now() - start);
        if (arrivals.length === 2) socket.end(JSON.stringify(arrivals));
      });
    });
    const { engine, address } = await startProxy(up.port, planner);
    try {
      const client = await connect(address.port);
      client.setNoDelay(true);
      const received = readAll(client);
      client.write('first');
      await new Promise((r) => setTimeout(r, 500));
      const sentSecond = Date.now();
      client.write('second');
      const reply = await received;
      const [first, second] = JSON.parse(reply.toString()) as number[];
      assert.ok(first >= 280, `first chunk held ${first} ms, expected about 300`);
      // The second chunk belongs to the same call (no response yet) and is past the release: no new hold.
      assert.ok(Date.now() - sentSecond < 250, 'second chunk was delayed again');
      assert.ok(second > first, `second chunk at ${second} ms, first at ${first} ms`);
      client.destroy();
    } finally {
      await engine.close();
      await up.close();
    }
  });

  test('a host name target is resolved for each connection', async () => {
    const up = await upstream((socket) => socket.pipe(socket));
    const engine = new ProxyEngine({ target: { host: 'localhost', port: up.port } });
    const address = await engine.listen();
    try {
      for (const word of ['first', 'second']) {
        const client = await connect(address.port);
        const received = readAll(client);
        client.write(word);
        client.end();
        assert.equal((await received).toString(), word);
      }
      assert.equal(engine.counters().connectionsFailed, 0, 'both connections reached the upstream');
    } finally {
      await engine.close();
      await up.close();
    }
  });

  test('an IPv6 upstream ([::1]) works when the machine has IPv6 loopback', async (t) => {
    const server = net.createServer((s) => s.pipe(s));
    try {
      server.listen(0, '::1');
      await once(server, 'listening');
    } catch {
      t.skip('no IPv6 loopback here');
      return;
    }
    const port = (server.address() as net.AddressInfo).port;
    const engine = new ProxyEngine({ target: { host: '::1', port }, listenHost: '::1', listenPort: 0 });
    const address = await engine.listen();
    try {
      assert.equal(address.host, '::1');
      const client = await connect(address.port, '::1');
      const received = readAll(client);
      client.end('hello over v6');
      assert.equal((await received).toString(), 'hello over v6');
    } finally {
      await engine.close();
      server.close();
    }
  });
});

describe('engine: half-close and resets', () => {
  test('client half-close: FIN reaches upstream after the data, the reply still comes back', async () => {
    const up = await upstream((socket) => {
      readAll(socket).then((data) => socket.end(`got ${data.length} bytes then FIN`));
    });
    const { engine, address } = await startProxy(up.port, () => ({ up: { hold: () => 100 }, down: { hold: () => 0 } }));
    try {
      const client = await connect(address.port);
      const received = readAll(client);
      client.write('x'.repeat(1000));
      client.end();
      assert.equal((await received).toString(), 'got 1000 bytes then FIN');
    } finally {
      await engine.close();
      await up.close();
    }
  });

  test('upstream half-close: the client sees FIN after the data and can still send', async () => {
    let upstreamGot: Promise<Buffer> | undefined;
    const up = await upstream((socket) => {
      upstreamGot = readAll(socket);
      socket.end('greeting then FIN');
    });
    const { engine, address } = await startProxy(up.port, () => ({ up: { hold: () => 0 }, down: { hold: () => 50 } }));
    try {
      const client = await connect(address.port);
      assert.equal((await readAll(client)).toString(), 'greeting then FIN');
      client.end('still talking');
      assert.equal((await upstreamGot!).toString(), 'still talking');
    } finally {
      await engine.close();
      await up.close();
    }
  });

  test('client RST resets the upstream', async () => {
    let upstreamError: Promise<string | undefined> | undefined;
    const up = await upstream((socket) => {
      upstreamError = errorCode(socket);
    });
    const { engine, address } = await startProxy(up.port);
    try {
      const client = await connect(address.port);
      while (!upstreamError) await new Promise((r) => setTimeout(r, 5));
      client.resetAndDestroy();
      assert.equal(await upstreamError, 'ECONNRESET');
    } finally {
      await engine.close();
      await up.close();
    }
  });

  test('upstream RST resets the client', async () => {
    const up = await upstream((socket) => {
      socket.once('data', () => socket.resetAndDestroy());
    });
    const { engine, address } = await startProxy(up.port);
    const closes: string[] = [];
    engine.on('close', (ev) => closes.push(ev.reason));
    try {
      const client = await connect(address.port);
      const code = errorCode(client);
      client.write('hi');
      assert.equal(await code, 'ECONNRESET');
      await waitFor(() => closes.length === 1);
      assert.deepEqual(closes, ['upstream-reset']);
    } finally {
      await engine.close();
      await up.close();
    }
  });

  test('an upstream that refuses resets the client and is counted', async () => {
    const probe = net.createServer();
    probe.listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const deadPort = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const { engine, address } = await startProxy(deadPort);
    const closes: string[] = [];
    engine.on('close', (ev) => closes.push(ev.reason));
    try {
      const client = await connect(address.port);
      assert.equal(await errorCode(client), 'ECONNRESET');
      await waitFor(() => closes.length === 1);
      assert.deepEqual(closes, ['connect-failed']);
      assert.equal(engine.counters().connectionsFailed, 1);
    } finally {
      await engine.close();
    }
  });
});

describe('engine: backpressure and scale', () => {
  test('a client that stops reading while upstream sends 200 MiB keeps the proxy bounded', async () => {
    const total = 200 * MiB;
    let upstreamDone: Promise<void> | undefined;
    const up = await upstream((socket) => {
      upstreamDone = (async () => {
        const block = Buffer.alloc(256 * 1024, 7);
        for (let sent = 0; sent < total; sent += block.length) {
          if (!socket.write(block)) await once(socket, 'drain');
        }
        socket.end();
      })();
    });
    const { engine, address } = await startProxy(up.port);
    try {
      global.gc?.();
      const rssBefore = process.memoryUsage().rss;
      const client = await connect(address.port);
      client.pause();
      await new Promise((r) => setTimeout(r, 1500));
      const stalled = engine.counters();
      assert.ok(stalled.bytesDown < 64 * MiB, `proxy forwarded ${stalled.bytesDown} bytes to a reader that reads nothing`);
      let received = 0;
      client.on('data', (b: Buffer) => (received += b.length));
      const ended = once(client, 'end');
      client.resume();
      await ended;
      await upstreamDone;
      assert.equal(received, total);
      const c = engine.counters();
      // 1 MiB mark, plus one socket read and the destination's own write buffer.
      assert.ok(c.maxLaneHeldBytes <= 1 * MiB + 256 * 1024, `a lane held ${c.maxLaneHeldBytes} bytes`);
      const growth = process.memoryUsage().rss - rssBefore;
      assert.ok(growth < 64 * MiB, `RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
    } finally {
      await engine.close();
      await up.close();
    }
  });

  test('1000 concurrent connections with a 50 ms delay all complete with correct data', async () => {
    const up = await upstream((socket) => socket.pipe(socket));
    const { engine, address, calls } = await startProxy(up.port, () => ({
      up: { hold: (ctx) => (ctx.unitStart ? 50 : 0) },
      down: { hold: () => 0 },
    }));
    try {
      const results = await Promise.all(
        Array.from({ length: 1000 }, async (_, i) => {
          const client = await connect(address.port);
          const payload = `connection ${i} payload ${'z'.repeat(i % 97)}`;
          const received = readAll(client);
          client.write(payload);
          // Wait for the echo before closing: a client that closes while waiting has given up.
          let got = '';
          for await (const chunk of client) {
            got += chunk;
            if (got.length >= payload.length) break;
          }
          client.end();
          await received.catch(() => {});
          return got === payload;
        }),
      );
      assert.equal(results.filter(Boolean).length, 1000);
      await waitFor(() => engine.counters().connectionsOpen === 0);
      assert.equal(engine.counters().connectionsTotal, 1000);
      assert.equal(calls.length, 1000);
      const wrong = calls.filter((c) => c.outcome !== 'answered' || c.delayMs !== 50 || c.endMs! - c.startMs < 45);
      assert.deepEqual(wrong, [], 'every call answered after its 50 ms hold');
    } finally {
      await engine.close();
      await up.close();
    }
  });
});

describe('engine: calls', () => {
  /** An upstream that answers every line it receives with `ok <line>`; `close` closes without answering. */
  async function lineServer(): Promise<Upstream> {
    return upstream((socket) => {
      socket.setEncoding('utf8');
      socket.on('data', (text: string) => {
        for (const line of text.split('\n').filter(Boolean)) {
          if (line === 'close') socket.end();
          else if (line !== 'silence') socket.write(`ok ${line}\n`);
        }
      });
    });
  }
  const hold300: Planner = () => ({ up: { hold: (ctx) => (ctx.unitStart ? 300 : 0) }, down: { hold: () => 0 } });

  test('answered: the wait covers the delay, and calls are numbered per proxy and per connection', async () => {
    const up = await lineServer();
    const { engine, address, calls } = await startProxy(up.port, hold300);
    try {
      const client = await connect(address.port);
      client.setEncoding('utf8');
      for (const word of ['a', 'b']) {
        const reply = once(client, 'data');
        client.write(`${word}\n`);
        assert.equal((await reply)[0], `ok ${word}\n`);
      }
      client.end();
      await waitFor(() => calls.length === 2);
      assert.deepEqual(
        calls.map((c) => [c.conn, c.call, c.connCall, c.outcome, c.delayMs, c.bytesUp, c.bytesDown]),
        [
          [1, 1, 1, 'answered', 300, 2, 5],
          [1, 2, 2, 'answered', 300, 2, 5],
        ],
      );
      for (const c of calls) {
        const wait = c.endMs! - c.startMs;
        assert.ok(wait >= 295 && wait < 1500, `wait ${wait}`);
      }
    } finally {
      await engine.close();
      await up.close();
    }
  });

  test('gave-up: the client destroys its socket while waiting', async () => {
    const up = await lineServer();
    const { engine, address, calls } = await startProxy(up.port, () => ({ up: { hold: () => 2000 }, down: { hold: () => 0 } }));
    try {
      const client = await connect(address.port);
      client.write('slow\n');
      await new Promise((r) => setTimeout(r, 300));
      client.destroy();
      await waitFor(() => calls.length === 1);
      const [c] = calls;
      assert.equal(c.outcome, 'gave-up');
      const wait = c.endMs! - c.startMs;
      assert.ok(wait >= 280 && wait < 1500, `wait ${wait}`);
    } finally {
      await engine.close();
      await up.close();
    }
  });

  test('gave-up also when the client resets', async () => {
    const up = await lineServer();
    const { engine, address, calls } = await startProxy(up.port, () => ({ up: { hold: () => 2000 }, down: { hold: () => 0 } }));
    try {
      const client = await connect(address.port);
      client.write('slow\n');
      await new Promise((r) => setTimeout(r, 200));
      client.resetAndDestroy();
      await waitFor(() => calls.length === 1);
      assert.equal(calls[0].outcome, 'gave-up');
    } finally {
      await engine.close();
      await up.close();
    }
  });

  test('upstream-closed: the upstream closes before answering', async () => {
    const up = await lineServer();
    const { engine, address, calls } = await startProxy(up.port, hold300);
    try {
      const client = await connect(address.port);
      const ended = once(client, 'end');
      client.write('close\n');
      await ended;
      await waitFor(() => calls.length === 1);
      const [c] = calls;
      assert.equal(c.outcome, 'upstream-closed');
      const wait = c.endMs! - c.startMs;
      assert.ok(wait >= 295 && wait < 1500, `wait ${wait}`);
      client.destroy();
    } finally {
      await engine.close();
      await up.close();
    }
  });

  test('unfinished: calls still waiting at shutdown', async () => {
    const up = await lineServer();
    const { engine, address, calls } = await startProxy(up.port, hold300);
    const client = await connect(address.port);
    client.on('error', () => {});
    client.write('silence\n');
    await new Promise((r) => setTimeout(r, 600));
    await engine.close();
    await up.close();
    assert.equal(calls.length, 1);
    assert.equal(calls[0].outcome, 'unfinished');
    const wait = calls[0].endMs! - calls[0].startMs;
    assert.ok(wait >= 550 && wait < 3000, `wait ${wait}`);
    client.destroy();
  });

  test('a delayed response answers the call only when delivered; a greeting is no call', async () => {
    const up = await upstream((socket) => {
      socket.write('hello\n');
      socket.on('data', () => socket.write('answer\n'));
    });
    const { engine, address, calls } = await startProxy(up.port, () => ({
      up: { hold: () => 0 },
      down: { hold: (ctx) => (ctx.unitStart ? 400 : 0) },
    }));
    try {
      const client = await connect(address.port);
      client.setEncoding('utf8');
      assert.equal((await once(client, 'data'))[0], 'hello\n');
      assert.equal(calls.length, 0);
      const reply = once(client, 'data');
      client.write('question\n');
      assert.equal((await reply)[0], 'answer\n');
      await waitFor(() => calls.length === 1);
      assert.equal(calls[0].outcome, 'answered');
      assert.equal(calls[0].delayMs, 400);
      assert.ok(calls[0].endMs! - calls[0].startMs >= 390);
      client.destroy();
    } finally {
      await engine.close();
      await up.close();
    }
  });

  test('pause holds all traffic until resume', async () => {
    const up = await lineServer();
    const { engine, address, calls } = await startProxy(up.port);
    try {
      engine.pause();
      const client = await connect(address.port);
      client.setEncoding('utf8');
      const reply = once(client, 'data');
      client.write('held\n');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(calls.length, 0);
      engine.resume();
      assert.equal((await reply)[0], 'ok held\n');
      client.destroy();
    } finally {
      await engine.close();
      await up.close();
    }
  });

  test('listen reports EADDRINUSE for a taken port', async () => {
    const first = new ProxyEngine({ target: { host: '127.0.0.1', port: 1 } });
    const { port } = await first.listen();
    const second = new ProxyEngine({ target: { host: '127.0.0.1', port: 1 }, listenPort: port });
    await assert.rejects(second.listen(), /EADDRINUSE/);
    await first.close();
    await second.close();
  });
});

async function waitFor(predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for a condition');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('engine: one-way messages', () => {
  test('a farewell sent after a timeout joins the slow call, which still ends as gave-up', async () => {
    const up = await upstream((socket) => socket.resume());
    const { engine, address, calls } = await startProxy(up.port, () => ({ up: { hold: () => 2000 }, down: { hold: () => 0 } }));
    try {
      const client = await connect(address.port);
      client.write('slow query');
      await new Promise((r) => setTimeout(r, 300));
      client.end('X\0\0\0\x04'); // the client times out, says goodbye and closes
      await waitFor(() => calls.length === 1);
      assert.equal(calls[0].outcome, 'gave-up');
      const wait = calls[0].endMs! - calls[0].startMs;
      assert.ok(wait >= 280 && wait < 1500, `wait ${wait}`);
    } finally {
      await engine.close();
      await up.close();
    }
  });

  test('a message sent right before closing is one-way, not a call the client gave up on', async () => {
    const up = await upstream((socket) => socket.resume());
    const { engine, address, calls } = await startProxy(up.port, () => ({ up: { hold: () => 200 }, down: { hold: () => 0 } }));
    try {
      const client = await connect(address.port);
      client.end('X\0\0\0\x04'); // PostgreSQL Terminate, then FIN
      await waitFor(() => calls.length === 1);
      assert.equal(calls[0].outcome, 'one-way');
    } finally {
      await engine.close();
      await up.close();
    }
  });
});
