// Edge cases of the proxy engine: socket-event orders around connect delays, held data,
// half-close, resets, slow-close, pause and backpressure, and the held-bytes counter.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { ProxyEngine } from '../src/proxy/engine.js';
import type { CallRecord, Planner, ProxyEvents } from '../src/proxy/types.js';

type CloseEvent = ProxyEvents['close'][0];

interface Upstream {
  port: number;
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
  const starts: CallRecord[] = [];
  const calls: CallRecord[] = [];
  const closes: CloseEvent[] = [];
  engine.on('callStart', (c) => starts.push({ ...c }));
  engine.on('callEnd', (c) => calls.push({ ...c }));
  engine.on('close', (ev) => closes.push(ev));
  return { engine, address, starts, calls, closes };
}

async function connect(port: number): Promise<net.Socket> {
  const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  socket.on('error', () => {});
  await once(socket, 'connect');
  return socket;
}

async function waitFor(check: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

const passPlan: Planner = () => ({ up: { hold: () => 0 }, down: { hold: () => 0 } });

describe('engine edges: connect delay', () => {
  test('client RST during the connect delay: the connection closes, the call gives up, nothing is held', async () => {
    const up = await upstream(() => {});
    const { engine, address, calls, closes } = await startProxy(up.port, () => ({ ...passPlan(null as never), connectDelayMs: 3000 }));
    try {
      const client = await connect(address.port);
      client.write('hello');
      await sleep(200);
      client.resetAndDestroy();
      await waitFor(() => closes.length === 1, 2000, 'close');
      assert.equal(closes[0].reason, 'client-reset');
      assert.deepEqual(calls.map((c) => c.outcome), ['gave-up']);
      assert.equal(engine.counters().heldBytes, 0);
      assert.equal(up.sockets.size, 0, 'never connected upstream');
    } finally {
      await engine.close();
      await up.close();
    }
  });

  test('client FIN during the connect delay: data then FIN reach upstream once it connects', async () => {
    const got: Buffer[] = [];
    let upstreamEnded = false;
    const up = await upstream((s) => {
      s.on('data', (b: Buffer) => got.push(b));
      s.on('end', () => {
        upstreamEnded = true;
        s.end('bye');
      });
    });
    const { engine, address, closes } = await startProxy(up.port, () => ({ ...passPlan(null as never), connectDelayMs: 300 }));
    try {
      const client = await connect(address.port);
      const parts: Buffer[] = [];
      client.on('data', (b: Buffer) => parts.push(b));
      client.end('request');
      await once(client, 'end');
      assert.ok(upstreamEnded, 'upstream saw the FIN');
      assert.equal(Buffer.concat(got).toString(), 'request');
      assert.equal(Buffer.concat(parts).toString(), 'bye');
      await waitFor(() => closes.length === 1, 2000, 'close');
      assert.equal(closes[0].reason, 'closed');
    } finally {
      await engine.close();
      await up.close();
    }
  });

  test('shutdown during the connect delay: the call is unfinished and the connection closes once', async () => {
    const up = await upstream(() => {});
    const { engine, address, calls, closes } = await startProxy(up.port, () => ({ ...passPlan(null as never), connectDelayMs: 5000 }));
    const client = await connect(address.port);
    client.write('x');
    await waitFor(() => engine.counters().callsStarted === 1, 2000, 'call start');
    await engine.close();
    await sleep(100);
    assert.deepEqual(calls.map((c) => c.outcome), ['unfinished']);
    assert.deepEqual(closes.map((c) => c.reason), ['shutdown']);
    client.destroy();
    await up.close();
  });
});

describe('engine edges: held data and half-close', () => {
  test('upstream FIN while the request is held: upstream-closed once, and the connection still closes', async () => {
    const up = await upstream((s) => {
      setTimeout(() => s.end(), 100);
    });
    const { engine, address, calls, closes } = await startProxy(up.port, () => ({ up: { hold: () => 600 }, down: { hold: () => 0 } }));
    try {
      const client = await connect(address.port);
      client.write('req');
      await once(client, 'end');
      await waitFor(() => calls.length === 1, 2000, 'call end');
      assert.equal(calls[0].outcome, 'upstream-closed');
      const wait = calls[0].endMs! - calls[0].startMs;
      assert.ok(wait < 500, `ended at the upstream FIN, not at the release (wait ${wait})`);
      client.end();
      await waitFor(() => closes.length === 1, 3000, 'close');
      await sleep(700);
      assert.equal(calls.length, 1, 'ended exactly once');
      assert.equal(engine.counters().heldBytes, 0, 'nothing held after close');
    } finally {
      await engine.close();
      await up.close();
    }
  });

  test('upstream answers then FINs while the answer is held: the call is answered at delivery', async () => {
    const up = await upstream((s) => {
      s.on('data', () => s.end('answer'));
    });
    const { engine, address, calls } = await startProxy(up.port, () => ({ up: { hold: () => 0 }, down: { hold: () => 300 } }));
    try {
      const client = await connect(address.port);
      const parts: Buffer[] = [];
      client.on('data', (b: Buffer) => parts.push(b));
      client.write('q');
      await once(client, 'end');
      assert.equal(Buffer.concat(parts).toString(), 'answer');
      await waitFor(() => calls.length === 1, 2000, 'call end');
      assert.equal(calls[0].outcome, 'answered');
      const wait = calls[0].endMs! - calls[0].startMs;
      assert.ok(wait >= 280 && wait < 1500, `wait ${wait}`);
      client.destroy();
    } finally {
      await engine.close();
      await up.close();
    }
  });

  test('slow-close then client reset: the connection closes at the reset, not after the slow close', async () => {
    const up = await upstream((s) => {
      s.on('data', () => s.end('answer'));
    });
    const { engine, address, closes } = await startProxy(up.port, () => ({ up: { hold: () => 0 }, down: { hold: () => 0, slowCloseMs: 5000 } }));
    try {
      const client = await connect(address.port);
      client.write('q');
      await once(client, 'data');
      await sleep(100);
      const t = Date.now();
      client.resetAndDestroy();
      await waitFor(() => closes.length === 1, 2000, 'close');
      assert.ok(Date.now() - t < 1500, 'closed at the reset');
      assert.equal(closes[0].reason, 'client-reset');
      assert.equal(engine.counters().heldBytes, 0, 'nothing held');
    } finally {
      await engine.close();
      await up.close();
    }
  });
});

describe('engine edges: pause', () => {
  test('a client FIN while paused is forwarded after resume, after the data', async () => {
    const got: Buffer[] = [];
    let ended = false;
    const up = await upstream((s) => {
      s.on('data', (b: Buffer) => got.push(b));
      s.on('end', () => {
        ended = true;
        s.end();
      });
    });
    const { engine, address, closes } = await startProxy(up.port);
    try {
      const client = await connect(address.port);
      await sleep(50);
      engine.pause();
      client.end('tail');
      await sleep(300);
      assert.equal(ended, false, 'FIN held while paused');
      engine.resume();
      await waitFor(() => closes.length === 1, 3000, 'close');
      assert.ok(ended, 'FIN reached upstream');
      assert.equal(Buffer.concat(got).toString(), 'tail');
      assert.equal(closes[0].reason, 'closed');
    } finally {
      await engine.close();
      await up.close();
    }
  });

  test('a client reset while paused closes the connection at once', async () => {
    const up = await upstream(() => {});
    const { engine, address, calls, closes } = await startProxy(up.port);
    try {
      const client = await connect(address.port);
      await sleep(50);
      engine.pause();
      client.write('held');
      await sleep(100);
      client.resetAndDestroy();
      await waitFor(() => closes.length === 1, 2000, 'close');
      assert.deepEqual(calls.map((c) => c.outcome), ['gave-up']);
      assert.equal(engine.counters().heldBytes, 0, 'nothing held');
    } finally {
      await engine.close();
      await up.close();
    }
  });
});

describe('engine edges: backpressure and held bytes', () => {
  test('held bytes return to 0 on an open, idle connection once a slow reader has caught up', async () => {
    const total = 8 * 1024 * 1024;
    const up = await upstream((s) => {
      s.once('data', () => {
        const chunk = Buffer.alloc(64 * 1024 + 123, 7);
        let sent = 0;
        const pump = () => {
          while (sent < total) {
            const n = Math.min(chunk.length, total - sent);
            sent += n;
            if (!s.write(chunk.subarray(0, n))) return void s.once('drain', pump);
          }
        };
        pump();
      });
    });
    const { engine, address } = await startProxy(up.port);
    try {
      const client = await connect(address.port);
      let received = 0;
      client.on('data', (b: Buffer) => (received += b.length));
      client.pause();
      client.write('go');
      await sleep(400);
      client.resume();
      await waitFor(() => received === total, 10_000, 'all bytes');
      await sleep(300);
      const held = engine.counters().heldBytes;
      assert.equal(held, 0, `held bytes on an idle connection: ${held}`);
      client.destroy();
    } finally {
      await engine.close();
      await up.close();
    }
  });
});

describe('engine edges: faults', () => {
  test('limit-data on the request lane while a call is pending: upstream-closed, one call, closes', async () => {
    const got: Buffer[] = [];
    const up = await upstream((s) => s.on('data', (b: Buffer) => got.push(b)));
    const { engine, address, starts, calls, closes } = await startProxy(up.port, () => ({ up: { hold: () => 0, limitBytes: 5 }, down: { hold: () => 0 } }));
    try {
      const client = await connect(address.port);
      client.write('0123456789');
      await once(client, 'end');
      await waitFor(() => closes.length === 1, 2000, 'close');
      assert.equal(closes[0].reason, 'limit-data');
      await waitFor(() => Buffer.concat(got).length >= 5, 2000, 'upstream bytes').catch(() => {});
      assert.equal(Buffer.concat(got).toString(), '01234');
      assert.deepEqual(calls.map((c) => c.outcome), ['upstream-closed']);
      assert.equal(starts.length, 1);
      assert.equal(engine.counters().heldBytes, 0, 'nothing held');
      client.destroy();
    } finally {
      await engine.close();
      await up.close();
    }
  });

  test('a timed reset during the connect delay closes the connection with fault-reset', async () => {
    const up = await upstream(() => {});
    const { engine, address, calls, closes } = await startProxy(up.port, () => ({
      ...passPlan(null as never),
      connectDelayMs: 2000,
      timed: [{ kind: 'reset', afterMs: 200 }],
    }));
    try {
      const client = await connect(address.port);
      client.write('x');
      await waitFor(() => closes.length === 1, 2000, 'close');
      assert.equal(closes[0].reason, 'fault-reset');
      assert.deepEqual(calls.map((c) => c.outcome), ['upstream-closed']);
      await sleep(2200);
      assert.equal(up.sockets.size, 0, 'never connected upstream after the reset');
      client.destroy();
    } finally {
      await engine.close();
      await up.close();
    }
  });
});

describe('engine edges: calls after the upstream hung up', () => {
  test('a request sent while the upstream FIN is slow-closed ends upstream-closed, not gave-up', async () => {
    const up = await upstream((s) => {
      s.once('data', () => s.end('answer'));
    });
    const { engine, address, calls, closes } = await startProxy(up.port, () => ({ up: { hold: () => 0 }, down: { hold: () => 0, slowCloseMs: 600 } }));
    try {
      const client = await connect(address.port);
      client.write('q1');
      await once(client, 'data');
      await sleep(100);
      // The client cannot know yet that the service hung up: its FIN is still held.
      client.write('q2');
      await once(client, 'end');
      client.end();
      await waitFor(() => closes.length === 1, 3000, 'close');
      assert.deepEqual(
        calls.map((c) => [c.connCall, c.outcome]),
        [
          [1, 'answered'],
          [2, 'upstream-closed'],
        ],
      );
    } finally {
      await engine.close();
      await up.close();
    }
  });
});
