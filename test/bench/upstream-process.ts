// The upstream service of the bench, in its own process (as a service container would be):
// `echo` returns every byte, `sink` reads until the client's FIN and answers with the byte count,
// `source` reads an 8-byte length and sends that many bytes.
import net from 'node:net';
import { once } from 'node:events';
import { serve } from './ipc.js';

const CHUNK = Buffer.alloc(64 * 1024, 0x5a);
const sockets = new Set<net.Socket>();

function server(onSocket: (socket: net.Socket) => void): net.Server {
  return net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onSocket(socket);
  });
}

const echo = server((socket) => socket.pipe(socket));

const sink = server((socket) => {
  let bytes = 0;
  socket.on('data', (b: Buffer) => (bytes += b.length));
  socket.on('end', () => {
    const count = Buffer.alloc(8);
    count.writeBigUInt64BE(BigInt(bytes));
    socket.end(count);
  });
});

const source = server((socket) => {
  let header = Buffer.alloc(0);
  const onData = (b: Buffer) => {
    header = Buffer.concat([header, b]);
    if (header.length < 8) return;
    socket.off('data', onData);
    void send(socket, Number(header.readBigUInt64BE(0)));
  };
  socket.on('data', onData);
});

async function send(socket: net.Socket, total: number): Promise<void> {
  let left = total;
  while (left > 0) {
    const piece = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
    left -= piece.length;
    if (!socket.write(piece)) await once(socket, 'drain');
  }
  socket.end();
}

async function listen(s: net.Server): Promise<number> {
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  return (s.address() as net.AddressInfo).port;
}

const ports = { echo: await listen(echo), sink: await listen(sink), source: await listen(source) };
serve({ ports }, {
  close: async () => {
    for (const socket of sockets) socket.destroy();
    await Promise.all([echo, sink, source].map((s) => new Promise((resolve) => s.close(resolve))));
  },
});
