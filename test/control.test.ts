// The control API of a running Session, over real HTTP: the token, each endpoint's effect on the
// traffic that follows, the traffic log's record of every change, and `slow-proxy ctl` against it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Session } from '../src/session.js';
import { parseSettings } from '../src/settings.js';
import { startUpstream, type Upstream } from './support/action-runner.js';
import { runCli, transcriptOf } from './support/cli-process.js';

interface Reply {
  status: number;
  body: Record<string, unknown>;
}

describe('control API', () => {
  let upstream: Upstream;
  let session: Session;
  let dir: string;

  before(async () => {
    upstream = await startUpstream();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'control-test-'));
    const settings = parseSettings({ target: upstream.target, seed: '3', name: 'control' });
    const files = { statsFile: path.join(dir, 'stats.json'), logFile: path.join(dir, 'traffic.jsonl'), pcapFile: null };
    session = await Session.start(settings, files, { controlPort: 0 });
  });

  after(async () => {
    await session.stop();
    await upstream.close();
  });

  async function api(method: string, route: string, body?: string, token: string | null = session.control!.token): Promise<Reply> {
    const headers: Record<string, string> = token === null ? {} : { authorization: `Bearer ${token}` };
    const response = await fetch(`${session.control!.url}${route}`, { method, headers, body });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  /** One connection kept open, so a change is seen by calls on a connection that already exists. */
  async function openClient(): Promise<{ call(text: string): Promise<{ reply: string; ms: number }>; close(): void }> {
    const socket = net.connect(session.address.port, '127.0.0.1');
    socket.on('error', () => {});
    await new Promise((resolve) => socket.once('connect', resolve));
    return {
      call: (text) =>
        new Promise((resolve, reject) => {
          const started = performance.now();
          const timer = setTimeout(() => reject(new Error(`no answer to ${text} within 10 s`)), 10_000);
          socket.once('data', (data) => {
            clearTimeout(timer);
            resolve({ reply: data.toString('utf8'), ms: performance.now() - started });
          });
          socket.write(text);
        }),
      close: () => socket.destroy(),
    };
  }

  test('every request needs the bearer token: none or a wrong one is 401', async () => {
    const missing = await api('GET', '/stats', undefined, null);
    const wrong = await api('GET', '/stats', undefined, 'not-the-token');
    const shortWrong = await api('GET', '/health', undefined, 'x');
    for (const reply of [missing, wrong, shortWrong]) {
      assert.equal(reply.status, 401, 'refused');
      assert.match(String(reply.body.error), /bearer token/, 'the error says what is missing');
    }
    assert.equal((await api('GET', '/health')).status, 200, 'the right token gets in');
  });

  test('PUT /delay applies to the next call, also on an open connection; a bad policy is 400 with the input error', async () => {
    const client = await openClient();
    try {
      const before = await client.call('a');
      assert.equal(before.reply, 're:a', 'answered');
      assert.ok(before.ms < 250, `no delay before the change: ${before.ms.toFixed(0)} ms`);

      const set = await api('PUT', '/delay', '400ms');
      assert.deepEqual(set, { status: 200, body: { delay: '400ms' } }, 'the reply gives the policy as read');
      const afterSet = await client.call('b');
      assert.ok(afterSet.ms >= 380 && afterSet.ms < 2000, `the new delay holds the next call: ${afterSet.ms.toFixed(0)} ms`);

      const bad = await api('PUT', '/delay', 'ramp(from=0ms, to=1s)');
      assert.equal(bad.status, 400, 'a bad policy is refused');
      assert.equal(bad.body.error, 'delay: cannot read "ramp(from=0ms, to=1s)": ramp needs step=<duration>, e.g. ramp(from=0ms, step=250ms, to=5s)', 'the InputError one-liner');

      await api('PUT', '/delay', '0ms');
      const reverted = await client.call('c');
      assert.ok(reverted.ms < 250, `the bad policy left the last good one in place, then 0ms applied: ${reverted.ms.toFixed(0)} ms`);
    } finally {
      client.close();
    }
  });

  test('POST /pause holds a call until POST /resume', async () => {
    const client = await openClient();
    try {
      assert.deepEqual(await api('POST', '/pause'), { status: 200, body: { paused: true } }, 'paused');
      assert.equal((await api('GET', '/health')).body.paused, true, 'health says paused');
      let answered = false;
      const pending = client.call('held').then((result) => {
        answered = true;
        return result;
      });
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(answered, false, 'no answer while paused');
      assert.deepEqual(await api('POST', '/resume'), { status: 200, body: { paused: false } }, 'resumed');
      const result = await pending;
      assert.equal(result.reply, 're:held', 'the held call is answered after resume');
      assert.ok(result.ms >= 380 && result.ms < 3000, `it waited for the pause: ${result.ms.toFixed(0)} ms`);
    } finally {
      client.close();
    }
  });

  test('POST /reset zeroes the statistics', async () => {
    const client = await openClient();
    await client.call('count me');
    client.close();
    const before = await api('GET', '/stats');
    assert.ok((before.body.calls as { total: number }).total > 0, 'calls were counted');
    assert.deepEqual(await api('POST', '/reset'), { status: 200, body: { reset: true } }, 'reset');
    const afterReset = await api('GET', '/stats');
    const calls = afterReset.body.calls as { total: number; answered: number };
    assert.equal(calls.total, 0, 'no calls after the reset');
    assert.equal(calls.answered, 0, 'no answered calls after the reset');
  });

  test('PUT /faults refuse resets the next connection; an empty body clears the faults', async () => {
    const set = await api('PUT', '/faults', 'refuse');
    assert.deepEqual(set, { status: 200, body: { faults: ['refuse'] } }, 'the reply lists the faults as read');
    const refused = await firstEvent(session.address.port);
    assert.ok(['ECONNRESET', 'closed'].includes(refused), `the next connection is reset: ${refused}`);

    const bad = await api('PUT', '/faults', 'hang\nexplode now');
    assert.equal(bad.status, 400, 'a bad fault is refused');
    assert.match(String(bad.body.error), /^faults line 2: cannot read "explode now": unknown fault "explode"/, 'the InputError names the line');

    assert.deepEqual(await api('PUT', '/faults', ''), { status: 200, body: { faults: [] } }, 'cleared');
    assert.equal(await firstEvent(session.address.port), 're:ping', 'connections work again');
  });

  test('unknown endpoints and methods are 404 and 405', async () => {
    assert.equal((await api('GET', '/nope')).status, 404, 'unknown path');
    assert.equal((await api('GET', '/delay')).status, 405, 'wrong method');
  });

  test('slow-proxy ctl: prints the JSON reply; an error reply or no server is one line and exit 1', async () => {
    const env = { SLOW_PROXY_CONTROL_URL: session.control!.url, SLOW_PROXY_TOKEN: session.control!.token };
    const closedPort = await freePort();
    const [health, delay, faults, badDelay, wrongToken, unreachable, noUrl] = await Promise.all([
      runCli(['ctl', 'health'], { env }),
      runCli(['ctl', 'delay', '0ms..5ms'], { env }),
      runCli(['ctl', 'faults', 'slow-close 10ms', 'connect-delay 5ms\nbandwidth 10MB/s'], { env }),
      runCli(['ctl', 'delay', 'ramp(from=0ms, to=1s)'], { env }),
      runCli(['ctl', 'stats', '--token', 'wrong'], { env }),
      runCli(['ctl', 'stats', '--url', `http://127.0.0.1:${closedPort}`, '--token', 'x']),
      runCli(['ctl', 'stats'], { env: { SLOW_PROXY_CONTROL_URL: '', SLOW_PROXY_TOKEN: '' } }),
    ]);
    assert.equal(health.code, 0, transcriptOf(health));
    assert.equal(JSON.parse(health.stdout).ok, true, 'health as JSON');
    assert.equal(delay.code, 0, transcriptOf(delay));
    assert.deepEqual(JSON.parse(delay.stdout), { delay: '0ms..5ms' }, 'delay set');
    assert.equal(faults.code, 0, transcriptOf(faults));
    assert.deepEqual(JSON.parse(faults.stdout), { faults: ['slow-close 10ms', 'connect-delay 5ms', 'bandwidth 10MB/s'] }, 'one fault per argument or line');

    assert.equal(badDelay.code, 1, transcriptOf(badDelay));
    assert.equal(
      badDelay.stderr,
      'slow-proxy ctl: PUT /delay failed (400): delay: cannot read "ramp(from=0ms, to=1s)": ramp needs step=<duration>, e.g. ramp(from=0ms, step=250ms, to=5s)\n',
      "the server's message, one line",
    );
    assert.equal(wrongToken.code, 1, transcriptOf(wrongToken));
    assert.match(wrongToken.stderr, /^slow-proxy ctl: GET \/stats failed \(401\): missing or wrong bearer token/, '--token overrides the environment');
    assert.equal(unreachable.code, 1, transcriptOf(unreachable));
    assert.equal(unreachable.stderr, `slow-proxy ctl: cannot reach http://127.0.0.1:${closedPort}: ECONNREFUSED\n`, 'one line');
    assert.equal(noUrl.code, 2, transcriptOf(noUrl));
    assert.match(noUrl.stderr, /SLOW_PROXY_CONTROL_URL/, 'says where the URL comes from');

    await api('PUT', '/faults', '');
    await api('PUT', '/delay', '0ms');
  });

  test('every change is noted in the traffic log', { timeout: 20_000 }, async () => {
    await session.stop();
    const lines = fs
      .readFileSync(session.files.logFile, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { event: string; action?: string });
    const actions = lines.filter((line) => line.event === 'control').map((line) => line.action);
    for (const action of ['delay', 'faults', 'pause', 'resume', 'reset']) {
      assert.ok(actions.includes(action), `a control line for ${action}: ${actions.join(',')}`);
    }
  });
});

/** What happens first on a new connection that sends `ping`: the reply, 'closed', or the error code. */
function firstEvent(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write('ping'));
    const done = (what: string) => {
      socket.destroy();
      resolve(what);
    };
    socket.once('data', (data) => done(data.toString('utf8')));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
    socket.once('close', () => done('closed'));
  });
}

/** A port nothing listens on (it was free a moment ago). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
