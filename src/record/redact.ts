// Payload previews for the traffic log, with credentials taken out.
// Secrets are located in the whole stream seen so far before a preview is cut to size, so a
// credential that straddles the cut, or one that the proxy forwards in several small pieces
// (bandwidth pacing), cannot leak a prefix.
import type { Direction } from '../proxy/types.js';

const MARKER = '[redacted]';

/**
 * The start of each direction is re-read from its first byte on every piece, so the framed
 * handshakes (PostgreSQL, MySQL, LDAP, Redis) are parsed on true message boundaries however they
 * are cut. Credentials are sent at the start of a connection; past this window only chunk-local
 * parsing and the line-based checks run.
 */
const HANDSHAKE_WINDOW = 4096;

/** Longest unfinished line kept past the window, so a header name cut in two is still recognised. */
const LINE_TAIL = 64;

/** A secret as a byte range of the stream; `end` may lie beyond the bytes seen so far. */
interface Secret {
  start: number;
  end: number;
  /** The end is not known yet: the secret runs to the next CR or LF. */
  untilEol?: boolean;
}

/** Preview of one chunk on its own, as if it were the start of a stream. */
export function previewPayload(chunk: Buffer, dir: Direction, maxBytes = 64): string {
  return new PayloadRedactor().preview(chunk, dir, maxBytes);
}

/** Previews of the chunks of one connection, in order; remembers secrets that continue into the next chunk. */
export class PayloadRedactor {
  private readonly lanes = { up: new Lane(), down: new Lane() };

  preview(chunk: Buffer, dir: Direction, maxBytes = 64): string {
    const lane = this.lanes[dir];
    const chunkStart = lane.offset;
    const chunkEnd = chunkStart + chunk.length;
    const found: Secret[] = [];
    for (const secret of lane.secrets) {
      if (secret.untilEol) closeAtEol(secret, chunk, chunkStart);
      found.push(secret);
    }
    if (lane.prefix) {
      lane.prefix = Buffer.concat([lane.prefix, chunk]);
      found.push(...framedSecrets(lane.prefix, dir));
      lane.linesFrom = lineSecrets(lane.prefix, dir, lane.linesFrom, found);
      if (lane.prefix.length >= HANDSHAKE_WINDOW) {
        lane.tail = lastLine(lane.prefix);
        lane.prefix = null;
      }
    } else {
      found.push(...shift(framedSecrets(chunk, dir), chunkStart));
      const joined = lane.tail.length > 0 ? Buffer.concat([lane.tail, chunk]) : chunk;
      const lines: Secret[] = [];
      lineSecrets(joined, dir, 0, lines);
      found.push(...shift(lines, chunkStart - lane.tail.length));
      lane.tail = lastLine(joined);
    }
    lane.offset = chunkEnd;
    lane.secrets = unique(found.filter((s) => s.end > chunkEnd));
    const masks = found
      .filter((s) => s.start < chunkEnd && s.end > chunkStart && s.end > s.start)
      .map((s) => ({ start: Math.max(s.start, chunkStart) - chunkStart, end: Math.min(s.end, chunkEnd) - chunkStart }));
    return render(chunk, masks, maxBytes);
  }
}

class Lane {
  offset = 0;
  /** Everything seen so far, while inside the handshake window; null after it. */
  prefix: Buffer | null = Buffer.alloc(0);
  /** Where the line-based scan of the prefix resumes: the first line or command not yet complete. */
  linesFrom = 0;
  /** The unfinished last line, after the window. */
  tail: Buffer = Buffer.alloc(0);
  /** Secrets that reach past the bytes seen so far. */
  secrets: Secret[] = [];
}

function closeAtEol(secret: Secret, chunk: Buffer, chunkStart: number): void {
  const eol = findEol(chunk, Math.max(0, secret.start - chunkStart));
  if (eol !== -1) {
    secret.end = chunkStart + eol;
    delete secret.untilEol;
  }
}

function lastLine(buf: Buffer): Buffer {
  const start = buf.lastIndexOf(0x0a) + 1;
  return buf.length - start <= LINE_TAIL ? Buffer.from(buf.subarray(start)) : Buffer.alloc(0);
}

function shift(secrets: Secret[], by: number): Secret[] {
  for (const s of secrets) {
    s.start += by;
    s.end += by;
  }
  return secrets;
}

function unique(secrets: Secret[]): Secret[] {
  const byRange = new Map<string, Secret>();
  for (const s of secrets) byRange.set(`${s.start}:${s.end}`, s);
  return [...byRange.values()];
}

/** Secrets of the binary protocols, read from the first byte of `buf` (a stream start or a chunk start). */
function framedSecrets(buf: Buffer, dir: Direction): Secret[] {
  const out: Secret[] = [];
  if (dir === 'down') return out;
  postgresSecrets(buf, out);
  mysqlSecrets(buf, out);
  ldapSecrets(buf, out);
  return out;
}

/**
 * Secrets of the line-based protocols (HTTP headers, Redis), read from `from`, which must be the
 * start of a line or command. Returns where the next scan may resume: what lies before is complete.
 */
function lineSecrets(buf: Buffer, dir: Direction, from: number, out: Secret[]): number {
  const resume = httpSecrets(buf, from, out);
  return dir === 'down' ? resume : Math.min(resume, redisSecrets(buf, from, out));
}

// ---- HTTP -------------------------------------------------------------------------------------

const SECRET_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie'].map((n) => Buffer.from(`${n}:`));

function httpSecrets(buf: Buffer, from: number, out: Secret[]): number {
  let lineStart = from;
  while (lineStart < buf.length) {
    for (const name of SECRET_HEADERS) {
      if (!startsWithIgnoringCase(buf, lineStart, name)) continue;
      let value = lineStart + name.length;
      while (buf[value] === 0x20 || buf[value] === 0x09) value++;
      untilEol(buf, value, out);
      break;
    }
    const nl = buf.indexOf(0x0a, lineStart);
    if (nl === -1) break;
    lineStart = nl + 1;
  }
  return lineStart;
}

function untilEol(buf: Buffer, start: number, out: Secret[]): void {
  const eol = findEol(buf, start);
  out.push(eol === -1 ? { start, end: Infinity, untilEol: true } : { start, end: eol });
}

function findEol(buf: Buffer, from: number): number {
  const cr = buf.indexOf(0x0d, from);
  const lf = buf.indexOf(0x0a, from);
  if (cr === -1) return lf;
  if (lf === -1) return cr;
  return Math.min(cr, lf);
}

/** `word` is lower-case ASCII. */
function startsWithIgnoringCase(buf: Buffer, at: number, word: Buffer): boolean {
  if (at + word.length > buf.length) return false;
  for (let i = 0; i < word.length; i++) {
    const b = buf[at + i];
    const lower = b >= 0x41 && b <= 0x5a ? b | 0x20 : b;
    if (lower !== word[i]) return false;
  }
  return true;
}

// ---- PostgreSQL -------------------------------------------------------------------------------

const PG_PROTOCOL_3 = 3;
const PG_SPECIAL_CODES = new Set([80877102 /* cancel */, 80877103 /* SSL */, 80877104 /* GSS encryption */]);

/** Frontend messages: untyped startup packets, then typed ones; type 'p' carries the password or SASL data. */
function postgresSecrets(buf: Buffer, out: Secret[]): void {
  let pos = 0;
  while (pos + 8 <= buf.length) {
    const len = buf.readUInt32BE(pos);
    const code = buf.readUInt32BE(pos + 4);
    const isStartup = code >>> 16 === PG_PROTOCOL_3 || PG_SPECIAL_CODES.has(code);
    if (!isStartup || len < 8 || len > 10_000) break;
    pos += len;
  }
  while (pos + 5 <= buf.length) {
    const type = buf[pos];
    const len = buf.readUInt32BE(pos + 1);
    if (!isAsciiLetter(type) || len < 4 || len > 0x3fffffff) return;
    if (type === 0x70 /* p */) out.push({ start: pos + 5, end: pos + 1 + len });
    pos += 1 + len;
  }
}

function isAsciiLetter(b: number): boolean {
  return (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
}

// ---- MySQL ------------------------------------------------------------------------------------

const MYSQL_PROTOCOL_41 = 0x200;
const MYSQL_SECURE_CONNECTION = 0x8000;
const MYSQL_PLUGIN_AUTH_LENENC = 0x200000;
const MYSQL_FIXED_PART = 32; // capabilities, max packet, charset, 23 filler bytes
const MYSQL_SSL_REQUEST_LENGTH = 32;

/**
 * HandshakeResponse41: the auth response after the user name. Then every client packet of the same
 * exchange (sequence id above 1: auth-switch responses, cleartext or RSA-encrypted passwords) until
 * the command phase resets the sequence to 0.
 */
function mysqlSecrets(buf: Buffer, out: Secret[]): void {
  if (buf.length < 4 + MYSQL_FIXED_PART) return;
  const len = buf.readUIntLE(0, 3);
  const body = 4;
  const caps = buf.readUInt32LE(body);
  if (!(caps & MYSQL_PROTOCOL_41) || buf[3] > 2 || len < MYSQL_FIXED_PART) return;
  for (let i = body + 9; i < body + MYSQL_FIXED_PART; i++) if (buf[i] !== 0) return;
  if (len === MYSQL_SSL_REQUEST_LENGTH) return; // TLS follows: nothing readable
  const packetEnd = body + len;
  const userEnd = buf.indexOf(0, body + MYSQL_FIXED_PART);
  if (userEnd === -1 || userEnd >= packetEnd) return;
  const authStart = userEnd + 1;
  if (caps & MYSQL_PLUGIN_AUTH_LENENC) {
    const n = readLenenc(buf, authStart);
    if (n) out.push({ start: authStart + n.size, end: authStart + n.size + n.value });
    else if (authStart < buf.length) out.push({ start: authStart, end: packetEnd });
  } else if (caps & MYSQL_SECURE_CONNECTION) {
    if (authStart < buf.length) out.push({ start: authStart + 1, end: authStart + 1 + buf[authStart] });
  } else {
    const nul = buf.indexOf(0, authStart);
    out.push({ start: authStart, end: nul !== -1 && nul < packetEnd ? nul : packetEnd });
  }
  let pos = packetEnd;
  while (pos + 4 <= buf.length && buf[pos + 3] > 1) {
    const next = pos + 4 + buf.readUIntLE(pos, 3);
    out.push({ start: pos + 4, end: next });
    pos = next;
  }
}

function readLenenc(buf: Buffer, at: number): { value: number; size: number } | null {
  if (at >= buf.length) return null;
  const first = buf[at];
  if (first < 0xfb) return { value: first, size: 1 };
  const width = first === 0xfc ? 2 : first === 0xfd ? 3 : first === 0xfe ? 8 : 0;
  if (width === 0 || at + 1 + width > buf.length) return null;
  return { value: width === 8 ? Number(buf.readBigUInt64LE(at + 1)) : buf.readUIntLE(at + 1, width), size: 1 + width };
}

// ---- LDAP (BER) -------------------------------------------------------------------------------

const BER_SEQUENCE = 0x30;
const BER_INTEGER = 0x02;
const BER_OCTET_STRING = 0x04;
const LDAP_BIND_REQUEST = 0x60; // [APPLICATION 0], constructed
const LDAP_AUTH_SIMPLE = 0x80; // [0], primitive
const LDAP_AUTH_SASL = 0xa3; // [3], constructed

interface Tlv {
  tag: number;
  /** First content byte. */
  start: number;
  /** One past the last content byte (may lie beyond the buffer). */
  end: number;
}

/** BindRequest: the simple password, or the SASL credentials. */
function ldapSecrets(buf: Buffer, out: Secret[]): void {
  let pos = 0;
  while (pos < buf.length) {
    const message = readTlv(buf, pos);
    if (!message || message.tag !== BER_SEQUENCE) return;
    const id = readTlv(buf, message.start);
    if (!id || id.tag !== BER_INTEGER) return;
    const op = readTlv(buf, id.end);
    if (op?.tag === LDAP_BIND_REQUEST) bindSecret(buf, op, out);
    pos = message.end;
  }
}

function bindSecret(buf: Buffer, op: Tlv, out: Secret[]): void {
  const version = readTlv(buf, op.start);
  if (!version || version.tag !== BER_INTEGER) return;
  const name = readTlv(buf, version.end);
  if (!name || name.tag !== BER_OCTET_STRING) return;
  const auth = readTlv(buf, name.end);
  if (auth?.tag === LDAP_AUTH_SIMPLE) {
    out.push({ start: auth.start, end: auth.end });
  } else if (auth?.tag === LDAP_AUTH_SASL) {
    const mechanism = readTlv(buf, auth.start);
    if (!mechanism || mechanism.tag !== BER_OCTET_STRING || mechanism.end >= auth.end) return;
    const credentials = readTlv(buf, mechanism.end);
    if (credentials) out.push({ start: credentials.start, end: credentials.end });
  }
}

function readTlv(buf: Buffer, at: number): Tlv | null {
  if (at + 2 > buf.length) return null;
  const tag = buf[at];
  const first = buf[at + 1];
  if (first < 0x80) return { tag, start: at + 2, end: at + 2 + first };
  const width = first & 0x7f;
  if (width === 0 || width > 4 || at + 2 + width > buf.length) return null;
  const len = buf.readUIntBE(at + 2, width);
  return { tag, start: at + 2 + width, end: at + 2 + width + len };
}

// ---- Redis ------------------------------------------------------------------------------------

const AUTH = Buffer.from('auth');
const HELLO = Buffer.from('hello');

/** `AUTH [user] pass` and `HELLO ... AUTH user pass`, as RESP arrays or inline commands. */
function redisSecrets(buf: Buffer, from: number, out: Secret[]): number {
  let pos = from;
  while (pos < buf.length) {
    if (buf[pos] === 0x2a /* * */) {
      const next = respCommand(buf, pos, out);
      if (next === 'incomplete') return pos;
      if (next !== 'malformed') {
        pos = next;
        continue;
      }
    }
    const nl = buf.indexOf(0x0a, pos);
    inlineCommand(buf, pos, out);
    if (nl === -1) return pos;
    pos = nl + 1;
  }
  return pos;
}

interface Arg {
  start: number;
  end: number;
}

function respCommand(buf: Buffer, at: number, out: Secret[]): number | 'incomplete' | 'malformed' {
  const header = readRespLine(buf, at + 1);
  if (header === 'incomplete' || header === 'malformed') return header;
  const count = header.value;
  const args: Arg[] = [];
  let pos = header.next;
  let result: number | 'incomplete' | 'malformed' = pos;
  for (let i = 0; i < count; i++) {
    if (pos >= buf.length) {
      result = 'incomplete';
      break;
    }
    if (buf[pos] !== 0x24 /* $ */) {
      result = 'malformed';
      break;
    }
    const size = readRespLine(buf, pos + 1);
    if (size === 'incomplete' || size === 'malformed') {
      result = size;
      break;
    }
    args.push({ start: size.next, end: size.next + size.value });
    pos = size.next + size.value + 2;
    result = pos;
    if (pos > buf.length) {
      result = 'incomplete';
      break;
    }
  }
  const secret = (i: number) => {
    if (args[i]) out.push({ start: args[i].start, end: args[i].end });
  };
  if (isWord(buf, args[0], AUTH)) {
    // AUTH pass | AUTH user pass: the user name stays readable.
    for (let i = count === 2 ? 1 : 2; i < count; i++) secret(i);
  } else if (isWord(buf, args[0], HELLO)) {
    for (let i = 1; i < args.length; i++) if (isWord(buf, args[i], AUTH)) secret(i + 2);
  }
  return result;
}

function readRespLine(buf: Buffer, at: number): { value: number; next: number } | 'incomplete' | 'malformed' {
  const cr = buf.indexOf(0x0d, at);
  if (cr === -1 || cr + 1 >= buf.length) return buf.length - at > 20 ? 'malformed' : 'incomplete';
  const text = buf.toString('latin1', at, cr);
  if (buf[cr + 1] !== 0x0a || !/^\d{1,10}$/.test(text)) return 'malformed';
  return { value: Number(text), next: cr + 2 };
}

function isWord(buf: Buffer, arg: Arg | undefined, word: Buffer): boolean {
  return !!arg && arg.end - arg.start === word.length && startsWithIgnoringCase(buf, arg.start, word);
}

/** Inline form: everything after AUTH to the end of the line (quoting makes word splitting unsafe). */
function inlineCommand(buf: Buffer, at: number, out: Secret[]): void {
  let pos = skipSpaces(buf, at);
  const command = wordEnd(buf, pos);
  if (command - pos === AUTH.length && startsWithIgnoringCase(buf, pos, AUTH)) {
    untilEol(buf, skipSpaces(buf, command), out);
    return;
  }
  if (command - pos !== HELLO.length || !startsWithIgnoringCase(buf, pos, HELLO)) return;
  pos = skipSpaces(buf, command);
  while (pos < buf.length && buf[pos] !== 0x0d && buf[pos] !== 0x0a) {
    const end = wordEnd(buf, pos);
    if (end - pos === AUTH.length && startsWithIgnoringCase(buf, pos, AUTH)) {
      untilEol(buf, skipSpaces(buf, end), out);
      return;
    }
    pos = skipSpaces(buf, end);
  }
}

function skipSpaces(buf: Buffer, at: number): number {
  while (buf[at] === 0x20 || buf[at] === 0x09) at++;
  return at;
}

function wordEnd(buf: Buffer, at: number): number {
  while (at < buf.length && buf[at] !== 0x20 && buf[at] !== 0x09 && buf[at] !== 0x0d && buf[at] !== 0x0a) at++;
  return at;
}

// ---- Rendering --------------------------------------------------------------------------------

/**
 * The first `maxBytes` of `chunk`, each masked range shown once as the marker. Mostly printable
 * bytes give text (control bytes escaped as \xNN); otherwise hex, prefixed `hex:`.
 */
function render(chunk: Buffer, masks: Arg[], maxBytes: number): string {
  masks.sort((a, b) => a.start - b.start);
  const pieces: Array<Buffer | null> = [];
  let pos = 0;
  const limit = Math.min(chunk.length, maxBytes);
  for (const mask of masks) {
    if (pos >= limit) break;
    if (mask.end <= pos) continue;
    if (mask.start > pos) pieces.push(chunk.subarray(pos, Math.min(mask.start, limit)));
    if (mask.start < limit && pieces[pieces.length - 1] !== null) pieces.push(null);
    pos = Math.max(pos, mask.end);
  }
  if (pos < limit) pieces.push(chunk.subarray(pos, limit));

  let visible = 0;
  let printable = 0;
  for (const piece of pieces) {
    if (!piece) continue;
    visible += piece.length;
    for (const b of piece) if (isPrintable(b)) printable++;
  }
  const asText = printable * 2 >= visible;
  const body = pieces.map((piece) => (piece ? (asText ? escapeText(piece) : piece.toString('hex')) : MARKER)).join('');
  return asText ? body : `hex:${body}`;
}

function isPrintable(b: number): boolean {
  return (b >= 0x20 && b < 0x7f) || b === 0x0d || b === 0x0a || b === 0x09;
}

function escapeText(bytes: Buffer): string {
  let s = '';
  for (const b of bytes) {
    if (b === 0x5c) s += '\\\\';
    else if (b >= 0x20 && b < 0x7f) s += String.fromCharCode(b);
    else if (b === 0x0d) s += '\\r';
    else if (b === 0x0a) s += '\\n';
    else if (b === 0x09) s += '\\t';
    else s += `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return s;
}
