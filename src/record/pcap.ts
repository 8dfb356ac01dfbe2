// A classic pcap file of the proxied traffic, for Wireshark/tshark. The proxy sees byte streams,
// not packets, so each connection is drawn as one synthetic IPv4/TCP conversation between the
// client and the target's port (which lets the dissectors recognise the protocol by port): a
// handshake at open, one segment per delivered piece (split to fit an IPv4 packet), and a FIN
// exchange or a reset at close. Sequence and ack numbers are kept consistent per connection.
import net from 'node:net';
import type { CloseReason, Direction, Target } from '../proxy/types.js';
import type { ProxyEventSource } from './traffic-log.js';
import { RecordFile } from './record-file.js';

export interface PcapOptions {
  target: Target;
  /** File size cap; past it nothing more is written. Default 100 MiB. */
  maxBytes?: number;
  /** Bytes that may wait for the disk before packets are dropped; default 8 MiB. */
  maxBufferedBytes?: number;
}

export interface PcapCounts {
  packetsWritten: number;
  /** Packets not written: past the size cap, or while the disk was behind. */
  packetsDropped: number;
  bytesWritten: number;
  capped: boolean;
}

const MiB = 1024 * 1024;
const LINKTYPE_RAW = 101;
const SNAPLEN = 65535;
const IP_HEADER = 20;
const TCP_HEADER = 20;
const RECORD_HEADER = 16;
/** Largest TCP payload in an IPv4 packet whose total length fits 16 bits. */
export const MAX_SEGMENT_PAYLOAD = 65535 - IP_HEADER - TCP_HEADER;

const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const PSH = 0x08;
const ACK = 0x10;

/** Close reasons drawn as a reset, and which side sent it (as the client saw it). */
const RESET_BY: Partial<Record<CloseReason, 'client' | 'server'>> = {
  'client-reset': 'client',
  'upstream-reset': 'server',
  'fault-reset': 'server',
  refused: 'server',
  'connect-failed': 'server',
};

interface Endpoint {
  ip: number;
  port: number;
  /** Next sequence number this side sends. */
  seq: number;
}

interface Conversation {
  client: Endpoint;
  server: Endpoint;
}

export class PcapWriter {
  private readonly file: RecordFile;
  private readonly serverIp: number;
  private readonly maxBytes: number;
  private readonly maxBufferedBytes: number;
  private readonly conversations = new Map<number, Conversation>();
  private readonly counts: PcapCounts = { packetsWritten: 0, packetsDropped: 0, bytesWritten: 0, capped: false };
  /** Wall-clock ms at the engine's time 0. */
  private epochMs = Date.now();
  private ipId = 0;
  private closing: Promise<void> | null = null;

  constructor(
    readonly path: string,
    private readonly options: PcapOptions,
  ) {
    this.maxBytes = options.maxBytes ?? 100 * MiB;
    this.maxBufferedBytes = options.maxBufferedBytes ?? 8 * MiB;
    this.serverIp = net.isIPv4(options.target.host) ? ipv4(options.target.host) : ipv4('127.0.0.1');
    this.file = new RecordFile(path);
    this.write(fileHeader());
  }

  get capped(): boolean {
    return this.counts.capped;
  }

  stats(): PcapCounts {
    return { ...this.counts };
  }

  attach(source: ProxyEventSource): void {
    if (source.elapsedMs) this.epochMs = Date.now() - source.elapsedMs();
    source.on('open', (info) => this.openConnection(info.conn, info.client, info.openedMs));
    source.on('data', (ev) => this.deliver(ev.conn, ev.dir, ev.chunk, ev.tMs));
    source.on('close', (ev) => this.closeConnection(ev.conn, ev.reason, ev.tMs));
  }

  /** Flush and end the file. Rejects if the file could not be written. */
  close(): Promise<void> {
    if (!this.closing) {
      this.conversations.clear();
      this.closing = this.file.end();
    }
    return this.closing;
  }

  private openConnection(conn: number, client: string, tMs: number): Conversation {
    const c: Conversation = {
      client: { ...clientAddress(conn, client), seq: isn(conn, 1) },
      server: { ip: this.serverIp, port: this.options.target.port, seq: isn(conn, 2) },
    };
    this.conversations.set(conn, c);
    this.segment(tMs, c.client, c.server, SYN, null, false);
    c.client.seq = inc(c.client.seq, 1);
    this.segment(tMs, c.server, c.client, SYN | ACK, null);
    c.server.seq = inc(c.server.seq, 1);
    this.segment(tMs, c.client, c.server, ACK, null);
    return c;
  }

  private deliver(conn: number, dir: Direction, chunk: Buffer, tMs: number): void {
    // A connection opened before attach() gets its handshake drawn at its first data.
    const c = this.conversations.get(conn) ?? this.openConnection(conn, '', tMs);
    const [from, to] = dir === 'up' ? [c.client, c.server] : [c.server, c.client];
    for (let at = 0; at < chunk.length; at += MAX_SEGMENT_PAYLOAD) {
      const payload = chunk.subarray(at, at + MAX_SEGMENT_PAYLOAD);
      this.segment(tMs, from, to, PSH | ACK, payload);
      // Advanced even when the packet was dropped, so a gap shows as missing bytes, not as corruption.
      from.seq = inc(from.seq, payload.length);
    }
  }

  private closeConnection(conn: number, reason: CloseReason, tMs: number): void {
    const c = this.conversations.get(conn);
    if (!c) return;
    this.conversations.delete(conn);
    const resetBy = RESET_BY[reason];
    if (resetBy) {
      const [from, to] = resetBy === 'client' ? [c.client, c.server] : [c.server, c.client];
      this.segment(tMs, from, to, RST | ACK, null);
      return;
    }
    // The side that closes first: the proxy's own closes come from the server side as the client sees it.
    const [first, second] = reason === 'closed' ? [c.client, c.server] : [c.server, c.client];
    this.segment(tMs, first, second, FIN | ACK, null);
    first.seq = inc(first.seq, 1);
    this.segment(tMs, second, first, FIN | ACK, null);
    second.seq = inc(second.seq, 1);
    this.segment(tMs, first, second, ACK, null);
  }

  private segment(tMs: number, from: Endpoint, to: Endpoint, flags: number, payload: Buffer | null, withAck = true): void {
    const payloadLength = payload?.length ?? 0;
    const packetLength = IP_HEADER + TCP_HEADER + payloadLength;
    const header = Buffer.alloc(RECORD_HEADER + IP_HEADER + TCP_HEADER);

    const us = Math.round((this.epochMs + tMs) * 1000);
    const seconds = Math.floor(us / 1e6);
    header.writeUInt32LE(seconds, 0);
    header.writeUInt32LE(us - seconds * 1e6, 4);
    header.writeUInt32LE(packetLength, 8);
    header.writeUInt32LE(packetLength, 12);

    const ip = RECORD_HEADER;
    header[ip] = 0x45; // IPv4, 5-word header
    header.writeUInt16BE(packetLength, ip + 2);
    this.ipId = (this.ipId + 1) & 0xffff;
    header.writeUInt16BE(this.ipId, ip + 4);
    header.writeUInt16BE(0x4000, ip + 6); // don't fragment
    header[ip + 8] = 64; // TTL
    header[ip + 9] = 6; // TCP
    header.writeUInt32BE(from.ip, ip + 12);
    header.writeUInt32BE(to.ip, ip + 16);
    header.writeUInt16BE(checksum(header, ip, ip + IP_HEADER, 0), ip + 10);

    const tcp = ip + IP_HEADER;
    header.writeUInt16BE(from.port, tcp);
    header.writeUInt16BE(to.port, tcp + 2);
    header.writeUInt32BE(from.seq, tcp + 4);
    header.writeUInt32BE(withAck ? to.seq : 0, tcp + 8);
    header[tcp + 12] = (TCP_HEADER / 4) << 4;
    header[tcp + 13] = flags;
    header.writeUInt16BE(65535, tcp + 14); // window
    const pseudo = (from.ip >>> 16) + (from.ip & 0xffff) + (to.ip >>> 16) + (to.ip & 0xffff) + 6 + TCP_HEADER + payloadLength;
    let sum = checksumSum(header, tcp, tcp + TCP_HEADER, pseudo);
    if (payload) sum = checksumSum(payload, 0, payload.length, sum);
    header.writeUInt16BE(fold(sum), tcp + 16);

    const recordLength = header.length + payloadLength;
    if (this.counts.capped || this.closing || this.file.unwritable) {
      this.counts.packetsDropped += 1;
      return;
    }
    if (this.counts.bytesWritten + recordLength > this.maxBytes) {
      this.counts.capped = true;
      this.counts.packetsDropped += 1;
      return;
    }
    if (this.file.buffered > this.maxBufferedBytes) {
      this.counts.packetsDropped += 1;
      return;
    }
    this.write(header);
    if (payload) this.write(payload);
    this.counts.packetsWritten += 1;
  }

  private write(bytes: Buffer): void {
    this.counts.bytesWritten += bytes.length;
    this.file.write(bytes);
  }
}

function fileHeader(): Buffer {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0); // microsecond timestamps, written little-endian
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(SNAPLEN, 16);
  header.writeUInt32LE(LINKTYPE_RAW, 20);
  return header;
}

/** The client as `host:port` from the engine; IPv6 and unknown hosts become IPv4 (synthetic 10.x when the port is unknown too). */
function clientAddress(conn: number, client: string): { ip: number; port: number } {
  const colon = client.lastIndexOf(':');
  const host = client.slice(0, colon).replace(/^::ffff:/, '');
  const port = Number(client.slice(colon + 1));
  if (colon !== -1 && Number.isInteger(port) && port > 0 && port < 65536) {
    return { ip: net.isIPv4(host) ? ipv4(host) : ipv4('127.0.0.1'), port };
  }
  return { ip: ((10 << 24) | (conn & 0xffffff)) >>> 0, port: 40000 + (conn % 20000) };
}

function ipv4(host: string): number {
  return host.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

/** Initial sequence numbers: fixed per connection and side, so files are reproducible. */
function isn(conn: number, side: number): number {
  return Math.imul(conn * 2 + side, 0x9e3779b1) >>> 0;
}

function inc(seq: number, by: number): number {
  return (seq + by) >>> 0;
}

/** Sum of 16-bit big-endian words (exact: a segment is far below 2^53 / 65535 words); the range starts on an even offset of its segment. */
function checksumSum(buf: Buffer, start: number, end: number, sum: number): number {
  let i = start;
  for (; i + 1 < end; i += 2) sum += (buf[i] << 8) | buf[i + 1];
  if (i < end) sum += buf[i] << 8;
  return sum;
}

function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

function checksum(buf: Buffer, start: number, end: number, sum: number): number {
  return fold(checksumSum(buf, start, end, sum));
}
