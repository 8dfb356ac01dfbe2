// A Session: the engine with every recorder attached, as the daemon and the CLI run it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { MAX_ERRORS_LOGGED, Session } from '../src/session.js';
import { parseSettings } from '../src/settings.js';
import { evaluateGates } from '../src/record/gates.js';
import { renderSummaryMarkdown } from '../src/render/summary.js';

async function lineUpstream(): Promise<net.Server> {
  const server = net.createServer((s) => {
    s.on('error', () => {});
    s.on('data', (d) => s.write(`ok ${d}`));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

async function calls(port: number, n: number): Promise<void> {
  const c = net.connect(port, '127.0.0.1');
  await once(c, 'connect');
  for (let i = 0; i < n; i++) {
    c.write(`q${i}`);
    await once(c, 'data');
  }
  c.end();
  await once(c, 'close');
}

test('a session flushes live stats, stops once, and notes a capped traffic log in the report', async () => {
  const up = await lineUpstream();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'session-'));
  const files = { statsFile: path.join(dir, 'stats.json'), logFile: path.join(dir, 'traffic.jsonl'), pcapFile: null };
  const settings = parseSettings({ target: `127.0.0.1:${(up.address() as net.AddressInfo).port}`, delay: '20ms', seed: '7', 'max-wait': '5s' });
  const session = await Session.start(settings, files, { flushIntervalMs: 100, trafficLogCaps: { maxEvents: 5 } });
  try {
    const live = JSON.parse(fs.readFileSync(files.statsFile, 'utf8'));
    assert.equal(live.endedAt, null, 'the first flush happens before traffic, while running');
    await calls(session.address.port, 10);
    await new Promise((r) => setTimeout(r, 400));
    const flushed = JSON.parse(fs.readFileSync(files.statsFile, 'utf8'));
    assert.equal(flushed.calls.answered, 10, 'the stats file is rewritten while running');

    const [first, second] = await Promise.all([session.stop(), session.stop()]);
    assert.equal(first, second, 'stop is idempotent');
    assert.notEqual(first.endedAt, null);
    assert.equal(first.seed, 7);
    assert.equal(first.trafficLog.capped, true);
    assert.match(first.notes?.join(' ') ?? '', /traffic log left out \d+ of \d+ events \(it reached its cap\)/);
    const markdown = renderSummaryMarkdown(first, evaluateGates(first));
    assert.match(markdown, /traffic log left out/);
    const final = JSON.parse(fs.readFileSync(files.statsFile, 'utf8'));
    assert.deepEqual(final.calls, first.calls, 'the final stats are on disk');
    const lines = fs.readFileSync(files.logFile, 'utf8').trim().split('\n');
    assert.equal(JSON.parse(lines.at(-1)!).capped, true, 'the last log line says it was capped');
  } finally {
    await session.stop();
    up.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a session whose control port is taken fails to start and leaves nothing listening', async () => {
  const up = await lineUpstream();
  const taken = net.createServer().listen(0, '127.0.0.1');
  await once(taken, 'listening');
  const probe = net.createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const proxyPort = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'session-'));
  const files = { statsFile: path.join(dir, 'stats.json'), logFile: path.join(dir, 'traffic.jsonl'), pcapFile: null };
  const settings = parseSettings({ target: `127.0.0.1:${(up.address() as net.AddressInfo).port}`, port: String(proxyPort) });
  try {
    await assert.rejects(Session.start(settings, files, { controlPort: (taken.address() as net.AddressInfo).port }), /EADDRINUSE/);
    const client = net.connect(proxyPort, '127.0.0.1');
    const [err] = (await once(client, 'error')) as [NodeJS.ErrnoException];
    assert.equal(err.code, 'ECONNREFUSED', 'the proxy port was closed again');
  } finally {
    taken.close();
    up.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('connection errors are logged up to a cap, then only counted', async () => {
  // An upstream that resets every connection: each one is an error the session could log.
  const up = net.createServer((s) => {
    s.on('error', () => {});
    s.resetAndDestroy();
  });
  up.listen(0, '127.0.0.1');
  await once(up, 'listening');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'session-'));
  const files = { statsFile: path.join(dir, 'stats.json'), logFile: path.join(dir, 'traffic.jsonl'), pcapFile: null };
  const settings = parseSettings({ target: `127.0.0.1:${(up.address() as net.AddressInfo).port}` });
  const logged: string[] = [];
  const session = await Session.start(settings, files, { log: (line) => logged.push(line) });
  try {
    const total = MAX_ERRORS_LOGGED + 30;
    for (let i = 0; i < total; i++) {
      const c = net.connect(session.address.port, '127.0.0.1');
      c.on('error', () => {});
      await new Promise((resolve) => c.on('close', resolve));
    }
    const stats = await session.stop();
    assert.ok(stats.errors.total >= total, `every error is counted (${stats.errors.total})`);
    assert.equal(logged.length, MAX_ERRORS_LOGGED + 1, 'the cap, then one line saying so');
    assert.match(logged.at(-1)!, /further connection errors are counted/);
  } finally {
    await session.stop();
    up.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
