import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { TrafficLog } from '../src/record/traffic-log.js';
import { ProxyEngine } from '../src/proxy/engine.js';
import type { CallRecord, ProxyEvents } from '../src/proxy/types.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'traffic-log-test-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

class FakeEngine extends EventEmitter<ProxyEvents> {
  now = 0;
  elapsedMs(): number {
    return this.now;
  }
}

function readLines(file: string): Array<Record<string, unknown>> {
  const text = fs.readFileSync(file, 'utf8');
  assert.ok(text.endsWith('\n'));
  return text.trimEnd().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
}

function newLog(name: string, options: Partial<ConstructorParameters<typeof TrafficLog>[1]> = {}) {
  const file = path.join(dir, name);
  const engine = new FakeEngine();
  const log = new TrafficLog(file, { logPayload: false, ...options });
  log.attach(engine);
  return { file, engine, log };
}

const call = (fields: Partial<CallRecord>): CallRecord => ({ conn: 1, call: 1, connCall: 1, startMs: 0, endMs: null, delayMs: 0, outcome: null, bytesUp: 0, bytesDown: 0, ...fields });

describe('traffic log lines', () => {
  test('one line per event, with the fields of its kind, then the totals', async () => {
    const { file, engine, log } = newLog('events.jsonl');
    engine.emit('open', { conn: 1, client: '127.0.0.1:50123', openedMs: 1.23456 });
    engine.emit('data', { conn: 1, dir: 'up', bytes: 4, delayMs: 0, tMs: 2, chunk: Buffer.from('ping'), call: 1 });
    engine.emit('callStart', call({ startMs: 2 }));
    engine.emit('data', { conn: 1, dir: 'down', bytes: 4, delayMs: 300.04, tMs: 302.5, chunk: Buffer.from('pong'), call: 1 });
    engine.emit('callEnd', call({ startMs: 2, endMs: 302.5, delayMs: 300, outcome: 'answered', bytesUp: 4, bytesDown: 4 }));
    engine.now = 350;
    log.note({ event: 'control', action: 'pause' });
    engine.emit('error', { conn: 1, side: 'upstream', message: 'read ECONNRESET', code: 'ECONNRESET', tMs: 400 });
    engine.emit('close', { conn: 1, reason: 'upstream-reset', tMs: 401, bytesUp: 4, bytesDown: 4, calls: 1, error: 'read ECONNRESET' });
    engine.now = 500;
    await log.close();

    const lines = readLines(file);
    assert.deepEqual(lines.slice(0, -1), [
      { t: 1.2, conn: 1, event: 'open', client: '127.0.0.1:50123' },
      { t: 2, conn: 1, event: 'data', dir: 'up', bytes: 4, delayMs: 0, call: 1 },
      { t: 302.5, conn: 1, event: 'data', dir: 'down', bytes: 4, delayMs: 300, call: 1 },
      { t: 302.5, conn: 1, event: 'call', call: 1, connCall: 1, outcome: 'answered', waitMs: 300.5, delayMs: 300, bytesUp: 4, bytesDown: 4 },
      { t: 350, event: 'control', action: 'pause' },
      { t: 400, conn: 1, event: 'error', side: 'upstream', reason: 'read ECONNRESET', code: 'ECONNRESET' },
      { t: 401, conn: 1, event: 'close', reason: 'upstream-reset', bytesUp: 4, bytesDown: 4, calls: 1, error: 'read ECONNRESET' },
    ]);
    const end = lines.at(-1)!;
    assert.equal(end.event, 'end');
    assert.equal(end.t, 500);
    assert.equal(end.events, 7);
    assert.equal(end.written, 7);
    assert.equal(end.dropped, 0);
    assert.equal(end.capped, false);
    assert.equal(end.bytesWritten, fs.statSync(file).size - JSON.stringify(end).length - 1);
  });

  test('payload previews are redacted across chunks, per connection', async () => {
    const { file, engine, log } = newLog('payload.jsonl', { logPayload: true });
    const password = 'Split-pw-NNN444';
    const message = Buffer.concat([Buffer.from([0x70, 0, 0, 0, 4 + password.length + 1]), Buffer.from(`${password}\u0000`)]);
    const cut = 9;
    engine.emit('data', { conn: 1, dir: 'up', bytes: cut, delayMs: 0, tMs: 1, chunk: message.subarray(0, cut), call: 1 });
    engine.emit('data', { conn: 2, dir: 'up', bytes: 8, delayMs: 0, tMs: 2, chunk: Buffer.from('GET / \r\n'), call: 2 });
    engine.emit('data', { conn: 1, dir: 'up', bytes: message.length - cut, delayMs: 0, tMs: 3, chunk: message.subarray(cut), call: 1 });
    engine.emit('data', { conn: 1, dir: 'down', bytes: 3, delayMs: 0, tMs: 4, chunk: Buffer.from([0, 1, 2]), call: 1 });
    await log.close();
    const previews = readLines(file).filter((l) => l.event === 'data').map((l) => l.preview);
    assert.deepEqual(previews, ['hex:7000000014[redacted]', 'GET / \\r\\n', '[redacted]', 'hex:000102']);
    const text = fs.readFileSync(file, 'utf8');
    assert.ok(!text.includes(password.slice(0, 4)) && !text.includes(password.slice(-4)));
  });

  test('past the line cap: counted by kind, not written, and said in the last line', async () => {
    const { file, engine, log } = newLog('capped.jsonl', { maxEvents: 5 });
    for (let conn = 1; conn <= 4; conn++) {
      engine.emit('open', { conn, client: `127.0.0.1:${50000 + conn}`, openedMs: conn });
      engine.emit('data', { conn, dir: 'up', bytes: 1, delayMs: 0, tMs: conn, chunk: Buffer.from('x'), call: conn });
      engine.emit('close', { conn, reason: 'closed', tMs: conn, bytesUp: 1, bytesDown: 0, calls: 1 });
    }
    log.note({ event: 'control', action: 'resume' });
    assert.equal(log.capped, true);
    await log.close();
    const lines = readLines(file);
    assert.equal(lines.length, 6);
    const end = lines.at(-1)!;
    assert.equal(end.capped, true);
    assert.equal(end.events, 13);
    assert.equal(end.written, 5);
    assert.equal(end.dropped, 8);
    assert.deepEqual(end.droppedByKind, { close: 3, open: 2, data: 2, control: 1 });
    assert.deepEqual(log.stats().droppedByKind, end.droppedByKind);
  });

  test('past the byte cap', async () => {
    const { file, engine, log } = newLog('bytes.jsonl', { maxBytes: 1000 });
    for (let i = 0; i < 100; i++) engine.emit('data', { conn: 1, dir: 'up', bytes: 1, delayMs: 0, tMs: i, chunk: Buffer.from('x'), call: 1 });
    await log.close();
    const end = readLines(file).at(-1)!;
    assert.equal(end.capped, true);
    assert.ok((end.bytesWritten as number) <= 1000 && (end.bytesWritten as number) > 900, `bytes ${end.bytesWritten}`);
    assert.equal((end.written as number) + (end.dropped as number), 100);
  });

  test('a disk slower than the traffic: lines dropped, not buffered without end', async () => {
    const { file, engine, log } = newLog('slow.jsonl', { maxBufferedBytes: 100_000 });
    const chunk = Buffer.alloc(10);
    // Emitted synchronously, so nothing reaches the disk meanwhile: the bound is all that holds.
    for (let i = 0; i < 50_000; i++) engine.emit('data', { conn: 1, dir: 'up', bytes: 10, delayMs: 0, tMs: i, chunk, call: 1 });
    const stats = log.stats();
    assert.ok(stats.droppedSlowDisk > 40_000, `dropped ${stats.droppedSlowDisk}`);
    assert.equal(stats.capped, false);
    // Once the disk has caught up, lines are written again.
    await new Promise((r) => setTimeout(r, 200));
    engine.emit('data', { conn: 1, dir: 'up', bytes: 10, delayMs: 0, tMs: 1, chunk, call: 1 });
    assert.equal(log.stats().written, stats.written + 1);
    await log.close();
    const lines = readLines(file);
    const end = lines.at(-1)!;
    assert.equal(lines.length - 1, end.written);
    assert.equal(end.droppedSlowDisk, stats.droppedSlowDisk);
    assert.ok((end.bytesWritten as number) < 100_000 + 70_000, `bytes ${end.bytesWritten}`);
  });

  test('an unwritable path rejects on close, without throwing meanwhile', async () => {
    const engine = new FakeEngine();
    const log = new TrafficLog(path.join(dir, 'missing', 'x.jsonl'), { logPayload: true });
    log.attach(engine);
    engine.emit('open', { conn: 1, client: '127.0.0.1:1', openedMs: 0 });
    await new Promise((r) => setTimeout(r, 20));
    engine.emit('data', { conn: 1, dir: 'up', bytes: 1, delayMs: 0, tMs: 1, chunk: Buffer.from('x'), call: 1 });
    await assert.rejects(log.close(), /ENOENT/);
  });
});

describe('traffic log of a real engine', () => {
  test('a request answered by the upstream', { timeout: 30_000 }, async () => {
    const upstream = net.createServer((s) => {
      s.on('error', () => {});
      s.on('data', () => s.write('+OK\r\n'));
      s.on('end', () => s.end());
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const engine = new ProxyEngine({ target: { host: '127.0.0.1', port: (upstream.address() as net.AddressInfo).port } });
    const file = path.join(dir, 'engine.jsonl');
    const log = new TrafficLog(file, { logPayload: true });
    log.attach(engine);
    const proxy = await engine.listen();
    try {
      const client = net.connect(proxy.port, proxy.host);
      await new Promise<void>((resolve, reject) => {
        client.on('error', reject);
        client.on('connect', () => client.write('AUTH echo-OOO555\r\n'));
        client.once('data', () => client.end());
        client.on('close', () => resolve());
      });
      while (engine.counters().connectionsOpen > 0) await new Promise((r) => setTimeout(r, 10));
      log.note({ event: 'control', action: 'stop' });
    } finally {
      await engine.close();
      await new Promise((resolve) => upstream.close(resolve));
      await log.close();
    }
    const lines = readLines(file);
    assert.deepEqual(
      lines.map((l) => [l.event, l.dir ?? l.outcome ?? l.reason ?? l.action].filter(Boolean).join(' ')),
      // The engine ends a call as it delivers the first response byte, so the call line comes first.
      ['open', 'data up', 'call answered', 'data down', 'close closed', 'control stop', 'end'],
    );
    const [open, up, callLine, down] = lines;
    assert.match(open.client as string, /^127\.0\.0\.1:\d+$/);
    assert.equal(up.preview, 'AUTH [redacted]\\r\\n');
    assert.equal(down.preview, '+OK\\r\\n');
    assert.equal(callLine.call, 1);
    assert.ok((callLine.waitMs as number) >= 0 && (callLine.waitMs as number) < 5000);
    const times = lines.map((l) => l.t as number);
    assert.deepEqual(times, [...times].sort((a, b) => a - b), 'times only grow');
    assert.ok(!fs.readFileSync(file, 'utf8').includes('OOO555'));
  });
});
