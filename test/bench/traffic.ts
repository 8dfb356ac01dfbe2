// The bench's client side: bulk transfers, ping-pongs and idle connections against a port
// (the upstream directly, or the proxy in front of it). Every function checks the bytes it got,
// so a broken proxy cannot report a fast result.
import net from 'node:net';
import { once } from 'node:events';

export const MiB = 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 0xa5);

export async function connect(port: number): Promise<net.Socket> {
  const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true, noDelay: true });
  await once(socket, 'connect');
  return socket;
}

/** Counts received bytes; `until(n)` resolves once `n` bytes in all have arrived. */
class Counter {
  received = 0;
  private target = Infinity;
  private resolve: (() => void) | null = null;
  private readonly onData = (b: Buffer) => {
    this.received += b.length;
    if (this.received >= this.target && this.resolve) {
      const done = this.resolve;
      this.resolve = null;
      done();
    }
  };

  constructor(private readonly socket: net.Socket) {
    socket.on('data', this.onData);
  }

  stop(): void {
    this.socket.off('data', this.onData);
  }

  until(total: number): Promise<void> {
    if (this.received >= total) return Promise.resolve();
    this.target = total;
    return new Promise((resolve) => (this.resolve = resolve));
  }
}

async function writeBytes(socket: net.Socket, total: number): Promise<void> {
  let left = total;
  while (left > 0) {
    const piece = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
    left -= piece.length;
    if (!socket.write(piece)) await once(socket, 'drain');
  }
}

function seconds(since: bigint): number {
  return Number(process.hrtime.bigint() - since) / 1e9;
}

/** Client to service: send `bytes`, then FIN; done when the service confirms the count. Seconds. */
export async function upload(port: number, bytes: number): Promise<number> {
  const socket = await connect(port);
  const parts: Buffer[] = [];
  socket.on('data', (b: Buffer) => parts.push(b));
  const ended = once(socket, 'end');
  const start = process.hrtime.bigint();
  await writeBytes(socket, bytes);
  socket.end();
  await ended;
  const took = seconds(start);
  socket.destroy();
  const counted = Number(Buffer.concat(parts).readBigUInt64BE(0));
  if (counted !== bytes) throw new Error(`upload: the service counted ${counted} bytes of ${bytes}`);
  return took;
}

/** Service to client: ask for `bytes` and read them until the service's FIN. Seconds. */
export async function download(port: number, bytes: number): Promise<number> {
  const socket = await connect(port);
  const counter = new Counter(socket);
  const ended = once(socket, 'end');
  const header = Buffer.alloc(8);
  header.writeBigUInt64BE(BigInt(bytes));
  const start = process.hrtime.bigint();
  socket.write(header);
  await ended;
  const took = seconds(start);
  socket.destroy();
  if (counter.received !== bytes) throw new Error(`download: got ${counter.received} bytes of ${bytes}`);
  return took;
}

/** Both ways at once through an echo: send `bytes` while reading them back. Seconds. */
export async function bothWays(port: number, bytes: number): Promise<number> {
  const socket = await connect(port);
  const counter = new Counter(socket);
  const start = process.hrtime.bigint();
  await Promise.all([writeBytes(socket, bytes), counter.until(bytes)]);
  const took = seconds(start);
  socket.destroy();
  return took;
}

/** `count` sequential request/response turns of `size` bytes on one connection to an echo; microseconds each. */
export async function pingPongs(socket: net.Socket, count: number, size: number): Promise<number[]> {
  const counter = new Counter(socket);
  const message = Buffer.alloc(size, 0x61);
  const times: number[] = [];
  for (let i = 1; i <= count; i += 1) {
    const start = process.hrtime.bigint();
    socket.write(message);
    await counter.until(i * size);
    times.push(Number(process.hrtime.bigint() - start) / 1e3);
  }
  counter.stop();
  if (counter.received !== count * size) throw new Error(`ping-pong: got ${counter.received} bytes, expected ${count * size}`);
  return times;
}

/** One connection's timed calls, named the way the proxy names the connection (its client address). */
export interface ClientCall {
  client: string;
  connCall: number;
  waitMs: number;
}

/** `connections` clients at once, each making `calls` sequential 64-byte calls to an echo. */
export async function concurrentCalls(port: number, connections: number, calls: number): Promise<ClientCall[]> {
  const results = await Promise.all(
    Array.from({ length: connections }, async () => {
      const socket = await connect(port);
      const client = `${socket.localAddress}:${socket.localPort}`;
      const micros = await pingPongs(socket, calls, 64);
      socket.destroy();
      return micros.map((us, i) => ({ client, connCall: i + 1, waitMs: us / 1000 }));
    }),
  );
  return results.flat();
}

/** Opens `count` connections to an echo, each after one 64-byte call, and leaves them open. */
export async function idleConnections(port: number, count: number, batch = 100): Promise<net.Socket[]> {
  const sockets: net.Socket[] = [];
  for (let done = 0; done < count; done += batch) {
    const opened = await Promise.all(
      Array.from({ length: Math.min(batch, count - done) }, async () => {
        const socket = await connect(port);
        await pingPongs(socket, 1, 64);
        return socket;
      }),
    );
    sockets.push(...opened);
  }
  return sockets;
}

export async function closeAll(sockets: net.Socket[]): Promise<void> {
  await Promise.all(
    sockets.map((socket) => {
      const closed = once(socket, 'close');
      socket.destroy();
      return closed;
    }),
  );
}
