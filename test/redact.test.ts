import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import pg from 'pg';
import { Redis } from 'ioredis';
import { Client as LdapClient } from 'ldapts';
import { PayloadRedactor, previewPayload } from '../src/record/redact.js';
import type { Direction } from '../src/proxy/types.js';

const MARK = '[redacted]';
/** Stands for a redacted range once a preview is turned back into bytes. */
const GAP = Buffer.from('\u0000<gap>\u0000');

/** Bytes a preview shows, with GAP where something was redacted. */
function decodePreview(preview: string): Buffer {
  const hex = preview.startsWith('hex:');
  const parts = (hex ? preview.slice(4) : preview).split(MARK);
  const bytes: Buffer[] = [];
  parts.forEach((part, i) => {
    if (i > 0) bytes.push(GAP);
    bytes.push(hex ? Buffer.from(part, 'hex') : unescape(part));
  });
  return Buffer.concat(bytes);
}

function unescape(text: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== '\\') {
      out.push(text.charCodeAt(i));
      continue;
    }
    const c = text[++i];
    if (c === 'x') {
      out.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else out.push({ r: 0x0d, n: 0x0a, t: 0x09, '\\': 0x5c }[c] ?? NaN);
  }
  return Buffer.from(out);
}

/** What the previews show of `stream` when it arrives cut at `cuts`, joined. */
function shownWhenCut(stream: Buffer, cuts: number[], dir: Direction = 'up'): Buffer {
  const redactor = new PayloadRedactor();
  const shown: Buffer[] = [];
  let from = 0;
  for (const cut of [...cuts, stream.length]) {
    shown.push(decodePreview(redactor.preview(stream.subarray(from, cut), dir, Infinity)));
    from = cut;
  }
  return Buffer.concat(shown);
}

/**
 * The secret never shows, whole or in part, however the stream is cut (every single cut, and
 * 1-byte and 7-byte pieces), and the readable parts stay readable.
 */
function assertRedacted(stream: Buffer, secret: string | Buffer, readable: string[], dir: Direction = 'up'): void {
  const secretBytes = Buffer.from(secret);
  const whole = previewPayload(stream, dir, stream.length);
  assert.ok(whole.includes(MARK), `nothing redacted in ${whole}`);
  assert.ok(!whole.includes(secretBytes.toString('latin1')), `secret in ${whole}`);
  assert.ok(!whole.includes(secretBytes.toString('hex')), `secret (hex) in ${whole}`);
  const shown = decodePreview(whole);
  assert.equal(shown.indexOf(secretBytes), -1, `secret bytes in ${whole}`);
  for (const part of readable) assert.ok(shown.includes(Buffer.from(part)), `"${part}" not readable in ${whole}`);

  const cutsList: number[][] = [];
  for (let k = 1; k < stream.length; k++) cutsList.push([k]);
  for (const step of [1, 7]) {
    const cuts: number[] = [];
    for (let k = step; k < stream.length; k += step) cuts.push(k);
    cutsList.push(cuts);
  }
  for (const cuts of cutsList) {
    const joined = shownWhenCut(stream, cuts, dir);
    // A leak would show secret bytes next to each other in the joined previews.
    for (let len = Math.min(4, secretBytes.length); len <= secretBytes.length; len++) {
      for (let i = 0; i + len <= secretBytes.length; i++) {
        const piece = secretBytes.subarray(i, i + len);
        if (stream.indexOf(piece) !== stream.lastIndexOf(piece)) continue; // also occurs outside the secret
        assert.equal(joined.indexOf(piece), -1, `cut at ${cuts.length > 3 ? `every ${cuts[0]} bytes` : cuts}: "${piece}" shows`);
      }
    }
  }
}

/** A TCP server that records what its one client sends and answers through `reply`. */
async function capture(
  reply: (received: Buffer, socket: net.Socket) => void,
  drive: (port: number) => Promise<void>,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      reply(Buffer.concat(chunks), socket);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    await drive((server.address() as net.AddressInfo).port);
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
  return Buffer.concat(chunks);
}

function pgMessage(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0, 'latin1');
  header.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

function pgAuthRequest(code: number, extra = Buffer.alloc(0)): Buffer {
  const body = Buffer.alloc(4);
  body.writeUInt32BE(code);
  return pgMessage('R', Buffer.concat([body, extra]));
}

/** Run a pg client whose server asks for a password with `authRequest`; returns what the client sent. */
async function pgClientBytes(password: string, authRequest: Buffer): Promise<Buffer> {
  return capture(
    (received, socket) => {
      // Startup first, then the password message: answer the first, hang up on the second.
      const startupLength = received.length >= 4 ? received.readUInt32BE(0) : Infinity;
      if (received.length === startupLength) socket.write(authRequest);
      else if (received.length >= startupLength + 5 && received.length >= startupLength + 1 + received.readUInt32BE(startupLength + 1)) socket.destroy();
    },
    async (port) => {
      const client = new pg.Client({ host: '127.0.0.1', port, user: 'app_user', database: 'shop', password });
      client.on('error', () => {});
      await client.connect().then(
        () => assert.fail('the fake server never accepts'),
        () => {},
      );
    },
  );
}

describe('redaction with real clients', () => {
  test('pg cleartext password message', async () => {
    const password = 'Pg-cleartext-9f3Kq';
    const stream = await pgClientBytes(password, pgAuthRequest(3));
    assert.ok(stream.includes(Buffer.from(password)), 'the client sent the password');
    assertRedacted(stream, password, ['user\u0000app_user\u0000database\u0000shop', 'p\u0000\u0000\u0000']);
  });

  test('pg md5 password message', async () => {
    const stream = await pgClientBytes('Pg-md5-pw-77', pgAuthRequest(5, Buffer.from([1, 2, 3, 4])));
    const hash = stream.subarray(stream.lastIndexOf(Buffer.from('md5')), stream.length - 1).toString();
    assert.match(hash, /^md5[0-9a-f]{32}$/);
    assertRedacted(stream, hash, ['app_user']);
  });

  test('ioredis with a password, and with a user name', async () => {
    for (const username of [undefined, 'cache_user']) {
      const password = 'Redis-pw-X81zz';
      let answered = 0;
      const answerEachCommand = (received: Buffer, socket: net.Socket) => {
        const commands = received.toString('latin1').match(/(^|\n)\*\d+\r\n/g)?.length ?? 0;
        socket.write('+OK\r\n'.repeat(commands - answered));
        answered = commands;
      };
      const stream = await capture(answerEachCommand, async (port) => {
        const redis = new Redis({ host: '127.0.0.1', port, username, password, lazyConnect: true, enableReadyCheck: false, retryStrategy: () => null, maxRetriesPerRequest: 0 });
        redis.on('error', () => {});
        await redis.connect();
        await redis.ping();
        redis.disconnect();
      });
      assert.ok(stream.includes(Buffer.from(password)));
      // ioredis 6 authenticates with HELLO 3 AUTH <user> <pass>; the user name stays readable.
      assertRedacted(stream, password, ['AUTH', username ?? 'default', 'ping']);
    }
  });

  test('ldapts simple bind', async () => {
    const password = 'Ldap-bind-pw-Q42';
    const dn = 'cn=admin,dc=example,dc=org';
    const stream = await capture(
      (_received, socket) => socket.destroy(),
      async (port) => {
        const client = new LdapClient({ url: `ldap://127.0.0.1:${port}`, timeout: 5000, connectTimeout: 5000 });
        await client.bind(dn, password).then(
          () => assert.fail('the fake server never answers'),
          () => {},
        );
        await client.unbind().catch(() => {});
      },
    );
    assert.ok(stream.includes(Buffer.from(password)));
    assertRedacted(stream, password, [dn]);
  });
});

describe('redaction of hand-built messages', () => {
  const request = (headers: string) => Buffer.from(`GET /orders?id=7 HTTP/1.1\r\nHost: api.test\r\n${headers}\r\n`);

  test('HTTP credentials headers, any case', () => {
    const stream = request('authorization: Bearer tok-AAA111\r\nProxy-Authorization: Basic cHJveHk6cHc=\r\nCookie: sid=cookie-BBB222\r\nAccept: */*\r\n');
    for (const secret of ['tok-AAA111', 'cHJveHk6cHc=', 'sid=cookie-BBB222']) {
      assertRedacted(stream, secret, ['GET /orders?id=7 HTTP/1.1\r\nHost: api.test\r\n', 'authorization: ', 'Accept: */*']);
    }
    const response = Buffer.from('HTTP/1.1 200 OK\r\nSet-Cookie: session=srv-CCC333; HttpOnly\r\nContent-Length: 0\r\n\r\n');
    assertRedacted(response, 'srv-CCC333', ['HTTP/1.1 200 OK', 'Set-Cookie: ', 'Content-Length: 0'], 'down');
  });

  test('a credential straddling the preview cut leaks no prefix', () => {
    const stream = request(`Authorization: Bearer ${'S'.repeat(20)}tail-secret\r\n`);
    const cut = stream.indexOf('Bearer') + 3;
    const preview = previewPayload(stream, 'up', cut + 4);
    assert.ok(preview.endsWith(`Authorization: ${MARK}`), preview);
    assert.ok(!preview.includes('Bea'), preview);
  });

  test('a header split inside its name past the handshake window', () => {
    const big = Buffer.from(`POST /upload HTTP/1.1\r\nContent-Length: 6000\r\n\r\n${'x'.repeat(6000)}`);
    const second = Buffer.from('GET /next HTTP/1.1\r\nAuthorization: Bearer late-DDD444\r\n\r\n');
    const stream = Buffer.concat([big, second]);
    for (let k = 1; k < second.length; k++) {
      const joined = shownWhenCut(stream, [big.length, big.length + k]);
      assert.equal(joined.indexOf('DDD'), -1, `cut at ${k}`);
      assert.ok(joined.includes('GET /next'));
    }
  });

  test('secrets cut in two past the handshake window: a long cookie, a Redis AUTH', () => {
    const resp = (...args: string[]) => `*${args.length}\r\n${args.map((a) => `$${a.length}\r\n${a}\r\n`).join('')}`;
    const cases = [
      { before: resp('SET', 'blob', 'v'.repeat(6000)), secret: 'late-auth-MMM333', then: resp('AUTH', 'late-auth-MMM333') + resp('PING') },
      { before: `POST /a HTTP/1.1\r\nContent-Length: 5000\r\n\r\n${'y'.repeat(5000)}`, secret: `c=${'Z'.repeat(100)}`, then: `GET /b HTTP/1.1\r\nCookie: c=${'Z'.repeat(100)}\r\n\r\n` },
    ];
    for (const { before, secret, then } of cases) {
      const stream = Buffer.from(before + then);
      const start = stream.indexOf(secret);
      for (const k of [start + 1, start + 5, start + secret.length - 1]) {
        const joined = shownWhenCut(stream, [before.length, k]);
        assert.equal(joined.indexOf(secret.slice(-4)), -1, `cut at ${k}: ${secret.slice(-4)} shows`);
        assert.equal(joined.indexOf(secret.slice(0, 4)), -1, `cut at ${k}: ${secret.slice(0, 4)} shows`);
      }
    }
  });

  test('plain text stays text, binary becomes hex, control bytes are escaped', () => {
    assert.equal(previewPayload(Buffer.from('PING\r\n\tx\\y'), 'up'), 'PING\\r\\n\\tx\\\\y');
    assert.equal(previewPayload(Buffer.from([0, 1, 2, 0x41]), 'down'), 'hex:00010241');
    const q = pgMessage('Q', Buffer.from('SELECT 42\u0000'));
    assert.equal(previewPayload(q, 'up'), 'Q\\x00\\x00\\x00\\x0eSELECT 42\\x00');
    assert.equal(previewPayload(Buffer.from('a'.repeat(100)), 'up'), 'a'.repeat(64));
    assert.equal(previewPayload(Buffer.from('abcdef'), 'up', 3), 'abc');
  });

  test('pg SASL messages have their body redacted', () => {
    const initial = pgMessage('p', Buffer.concat([Buffer.from('SCRAM-SHA-256\u0000'), Buffer.from([0, 0, 0, 20]), Buffer.from('n,,n=,r=nonce-EEE555')]));
    const response = pgMessage('p', Buffer.from('c=biws,r=nonce-EEE555srv,p=proof-FFF666='));
    const query = pgMessage('Q', Buffer.from('SELECT now()\u0000'));
    assertRedacted(Buffer.concat([initial, response, query]), 'proof-FFF666', ['SELECT now()']);
    assertRedacted(Buffer.concat([initial, response, query]), 'nonce-EEE555', ['SELECT now()']);
  });

  const CLIENT_PROTOCOL_41 = 0x200;
  const CLIENT_SECURE_CONNECTION = 0x8000;
  const CLIENT_CONNECT_WITH_DB = 0x8;
  const CLIENT_PLUGIN_AUTH = 0x80000;
  const CLIENT_PLUGIN_AUTH_LENENC = 0x200000;

  function mysqlPacket(seq: number, payload: Buffer): Buffer {
    const header = Buffer.alloc(4);
    header.writeUIntLE(payload.length, 0, 3);
    header[3] = seq;
    return Buffer.concat([header, payload]);
  }

  function handshakeResponse(caps: number, auth: Buffer): Buffer {
    const fixed = Buffer.alloc(32);
    fixed.writeUInt32LE(caps, 0);
    fixed.writeUInt32LE(16 * 1024 * 1024, 4);
    fixed[8] = 45;
    const authField = caps & CLIENT_PLUGIN_AUTH_LENENC || caps & CLIENT_SECURE_CONNECTION ? Buffer.concat([Buffer.from([auth.length]), auth]) : Buffer.concat([auth, Buffer.from([0])]);
    return mysqlPacket(1, Buffer.concat([fixed, Buffer.from('shop_user\u0000'), authField, Buffer.from('inventory\u0000mysql_native_password\u0000')]));
  }

  test('MySQL HandshakeResponse41 auth data, auth-switch answers, then commands readable', () => {
    const scramble = Buffer.from('a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0', 'hex');
    const caps = CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_CONNECT_WITH_DB | CLIENT_PLUGIN_AUTH;
    for (const flags of [caps, caps | CLIENT_PLUGIN_AUTH_LENENC]) {
      const switchAnswer = mysqlPacket(3, Buffer.from('clear-GGG777\u0000'));
      const query = mysqlPacket(0, Buffer.concat([Buffer.from([3]), Buffer.from('SELECT * FROM items')]));
      const stream = Buffer.concat([handshakeResponse(flags, scramble), switchAnswer, query]);
      assertRedacted(stream, scramble, ['shop_user', 'inventory', 'mysql_native_password', 'SELECT * FROM items']);
      assertRedacted(stream, 'clear-GGG777', ['shop_user', 'SELECT * FROM items']);
    }
    const oldStyle = handshakeResponse(CLIENT_PROTOCOL_41, Buffer.from('old-HHH888'));
    assertRedacted(oldStyle, 'old-HHH888', ['shop_user']);
  });

  test('LDAP SASL PLAIN bind credentials', () => {
    const tlv = (tag: number, content: Buffer) => Buffer.concat([Buffer.from([tag, content.length]), content]);
    const creds = Buffer.from('\u0000reader\u0000sasl-III999');
    const bind = tlv(0x60, Buffer.concat([tlv(0x02, Buffer.from([3])), tlv(0x04, Buffer.from('')), tlv(0xa3, Buffer.concat([tlv(0x04, Buffer.from('PLAIN')), tlv(0x04, creds)]))]));
    const message = tlv(0x30, Buffer.concat([tlv(0x02, Buffer.from([1])), bind]));
    assertRedacted(message, 'sasl-III999', ['PLAIN']);
  });

  test('Redis inline AUTH and HELLO ... AUTH, inline and RESP', () => {
    assertRedacted(Buffer.from('AUTH inline-JJJ000\r\nPING\r\n'), 'inline-JJJ000', ['AUTH ', 'PING']);
    assertRedacted(Buffer.from('hello 3 auth someone hello-KKK111 SETNAME x\r\nPING\r\n'), 'hello-KKK111', ['hello 3 auth ', 'PING']);
    const resp = (...args: string[]) => `*${args.length}\r\n${args.map((a) => `$${a.length}\r\n${a}\r\n`).join('')}`;
    const stream = Buffer.from(resp('HELLO', '3', 'AUTH', 'someone', 'resp-LLL222', 'SETNAME', 'worker') + resp('GET', 'key'));
    assertRedacted(stream, 'resp-LLL222', ['HELLO', 'someone', 'SETNAME', 'worker', 'GET']);
  });

  test('nothing is redacted in ordinary traffic', () => {
    const text = 'SET key value\r\n*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n';
    assert.equal(previewPayload(Buffer.from(text), 'up', 200), text.replace(/\r/g, '\\r').replace(/\n/g, '\\n'));
    const query = pgMessage('Q', Buffer.from('SELECT password FROM users\u0000'));
    assert.ok(previewPayload(query, 'up').includes('SELECT password FROM users'));
  });
});
