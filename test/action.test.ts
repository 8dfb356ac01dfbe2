// The GitHub Action end to end, run the way the runner runs it: the bundled dist/main and dist/post
// as child processes with INPUT_*, GITHUB_* files and STATE_*, real sockets on 127.0.0.1 and a small
// upstream server started here. `npm run build` must have produced dist/ from the current sources.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import {
  Job,
  callThrough,
  connectResult,
  processGone,
  processesMentioning,
  readStats,
  runPost,
  runStep,
  startUpstream,
  transcript,
  waitFor,
  type StepResult,
  type Upstream,
} from './support/action-runner.js';
import type { ProxyState } from '../src/action/state.js';

function savedState(main: StepResult): ProxyState {
  const state = JSON.parse(main.state['slow-proxy'] ?? 'null') as ProxyState | null;
  assert.ok(state && typeof state.pid === 'number', `main saved no daemon pid in its state: ${JSON.stringify(main.state)}`);
  return state;
}

function daemonPid(main: StepResult): number {
  return savedState(main).pid;
}

function assertStepOk(step: StepResult, what: string): void {
  assert.equal(step.code, 0, `${what} failed: ${transcript(step)}`);
  assert.deepEqual(step.errors, [], `${what} reported errors: ${transcript(step)}`);
}

const jobs: Job[] = [];
const upstreams: Upstream[] = [];

function newJob(): Job {
  const job = new Job();
  jobs.push(job);
  return job;
}

async function newUpstream(reply?: (chunk: Buffer) => Buffer): Promise<Upstream> {
  const upstream = await startUpstream(reply);
  upstreams.push(upstream);
  return upstream;
}

after(async () => {
  for (const job of jobs) job.remove();
  await Promise.all(upstreams.map((u) => u.close()));
});

describe('main and post around a job', () => {
  let job: Job;
  let upstream: Upstream;
  let inputs: Record<string, string>;
  let main: StepResult;

  before(async () => {
    job = newJob();
    upstream = await newUpstream();
    inputs = { target: upstream.target, delay: '150ms', seed: '7' };
    main = await runStep(job, 'main', inputs);
  });

  test('main returns at once with the proxy left running and its outputs set', () => {
    assertStepOk(main, 'main');
    // The runner waits for every holder of the step's stdout/stderr: a daemon holding them would hang the step.
    assert.ok(main.closeMs < 5000, `main's stdout/stderr closed only after ${Math.round(main.closeMs)} ms`);
    assert.ok(main.closeMs - main.exitMs < 1000, `main's stdout/stderr stayed open ${Math.round(main.closeMs - main.exitMs)} ms after it exited`);
    const port = Number(main.outputs.port);
    assert.ok(Number.isInteger(port) && port > 0, `port output: ${main.outputs.port}`);
    assert.equal(main.outputs.address, `127.0.0.1:${port}`);
    for (const name of ['stats-file', 'log-file']) {
      assert.ok(main.outputs[name]?.startsWith(job.runnerTemp), `${name} output ${main.outputs[name]} is not under RUNNER_TEMP`);
    }
    assert.notEqual(main.outputs['stats-file'], main.outputs['log-file']);
    assert.match(main.outputs['control-url'], /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(main.outputs['pcap-file'], '', 'no pcap unless asked for');
    assert.match(main.stdout, new RegExp(`slow proxy listening on 127\\.0\\.0\\.1:${port} -> ${upstream.target}`));
    assert.ok(!processGone(daemonPid(main)), 'the daemon is not running after main');
  });

  test('traffic flows through the address, delayed, and the stats file is live', async () => {
    const port = Number(main.outputs.port);
    const started = performance.now();
    assert.equal(await callThrough(port, 'ping'), 're:ping');
    const took = performance.now() - started;
    assert.ok(took >= 140 && took < 3000, `a call through a 150ms delay took ${Math.round(took)} ms`);

    const statsFile = main.outputs['stats-file'];
    const seen = await waitFor('the call in the stats file', () => {
      const stats = readStats(statsFile);
      return stats && stats.calls.answered === 1 ? stats : null;
    }, 2500);
    assert.equal(seen.endedAt, null, 'a running proxy writes endedAt: null');
    // Rewritten every second even without traffic.
    const later = await waitFor('a newer stats file', () => {
      const stats = readStats(statsFile);
      return stats && stats.durationMs > seen.durationMs ? stats : null;
    }, 2500);
    assert.equal(later.endedAt, null);
  });

  test('post stops the daemon, writes the job summary and the final stats', async () => {
    const pid = daemonPid(main);
    const port = Number(main.outputs.port);
    const post = await runPost(job, main, inputs);
    assertStepOk(post, 'post');
    assert.deepEqual(post.warnings, [], `post warned: ${transcript(post)}`);
    assert.ok(post.closeMs < 10_000, `post took ${Math.round(post.closeMs)} ms`);
    assert.equal(await connectResult(port), 'ECONNREFUSED', 'something still listens on the proxy port after post');
    const controlPort = Number(new URL(main.outputs['control-url']).port);
    assert.equal(await connectResult(controlPort), 'ECONNREFUSED', 'the control API still listens after post');
    assert.ok(processGone(pid), `the daemon (pid ${pid}) still runs after post`);
    assert.deepEqual(processesMentioning(job.dir), [], 'a process of this job still runs after post');
    const daemonLog = readFileSync(savedState(main).daemonLog, 'utf8');
    assert.match(daemonLog, /SIGTERM: stopping[\s\S]*stopped: 1 calls?\b/, `the daemon did not stop on SIGTERM:\n${daemonLog}`);

    const stats = readStats(main.outputs['stats-file']);
    assert.ok(stats, 'no stats file after post');
    assert.ok(stats.endedAt !== null && !Number.isNaN(Date.parse(stats.endedAt)), `endedAt after post: ${stats.endedAt}`);
    assert.equal(stats.calls.answered, 1);

    const summary = job.summary();
    assert.equal(post.summary, summary, 'post appended the whole summary');
    assert.match(summary, new RegExp(`^### ℹ️ port-${upstream.port}: 1 call, 1 delayed; the app waited up to \\d+ ms \\(no max-wait set\\)`));
    assert.match(summary, /\| Outcome \| Calls \| Wait p50 \| p95 \| p99 \| max \|/);
    assert.match(summary, /\| answered \| 1 \| \d+ ms \|/);
    assert.doesNotMatch(summary, /Payload previews/, 'payload previews without log-payload');
    assert.doesNotMatch(readFileSync(main.outputs['log-file'], 'utf8'), /"preview"/, 'payload in the traffic log without log-payload');
  });
});

describe('bad inputs', () => {
  let upstream: Upstream;
  before(async () => {
    upstream = await newUpstream();
  });

  const cases: { what: string; inputs: (target: string) => Record<string, string>; message: RegExp }[] = [
    {
      what: 'a ramp without a step',
      inputs: (target) => ({ target, delay: 'ramp(from=0ms, to=1s)' }),
      message: /^delay: cannot read "ramp\(from=0ms, to=1s\)": .*step.*, e\.g\. /,
    },
    { what: 'a target without a port', inputs: () => ({ target: 'localhost' }), message: /^target: cannot read "localhost": expected host:port/ },
    { what: 'a missing target', inputs: () => ({}), message: /^target: cannot read "": a target is required/ },
    { what: 'a port out of range', inputs: (target) => ({ target, port: '70000' }), message: /^port: cannot read "70000": port 70000 is out of range/ },
    { what: 'a port that is not a number', inputs: (target) => ({ target, port: 'any' }), message: /^port: cannot read "any": a port is a whole number/ },
    { what: 'a log-payload that is not a boolean', inputs: (target) => ({ target, 'log-payload': 'yes' }), message: /^log-payload: cannot read "yes": expected true or false/ },
    { what: 'a max-wait that is not a duration', inputs: (target) => ({ target, 'max-wait': 'soon' }), message: /^max-wait: cannot read "soon"/ },
  ];

  for (const { what, inputs, message } of cases) {
    test(`${what} fails main with one line naming the input, and post stays quiet`, async () => {
      const job = newJob();
      const given = inputs(upstream.target);
      const main = await runStep(job, 'main', given);
      assert.equal(main.code, 1, transcript(main));
      assert.equal(main.errors.length, 1, `expected exactly one error annotation: ${transcript(main)}`);
      const [error] = main.errors;
      assert.match(error.message, message);
      assert.ok(!error.message.includes('\n'), `the message is not one line: ${error.message}`);
      assert.doesNotMatch(main.stdout + main.stderr, /\n\s+at /, `a stack trace was printed: ${transcript(main)}`);
      assert.deepEqual(main.outputs, {}, 'outputs set although nothing started');
      assert.deepEqual(main.state, {}, 'state saved although nothing started');
      assert.deepEqual(readdirSync(job.runnerTemp), [], 'main created files although the inputs were bad');
    assert.deepEqual(processesMentioning(job.dir), [], 'main started a process although the inputs were bad');

      const post = await runPost(job, main, given);
      assert.equal(post.code, 0, transcript(post));
      assert.deepEqual(post.annotations, [], transcript(post));
      assert.equal(post.stdout, '', 'post printed something with nothing started');
      assert.equal(post.summary, '');
    });
  }
});

test('a fixed port already in use fails main with EADDRINUSE within 10 s', async () => {
  const job = newJob();
  const upstream = await newUpstream();
  const squatter = net.createServer();
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
  const { port } = squatter.address() as net.AddressInfo;
  try {
    const inputs = { target: upstream.target, port: String(port) };
    const main = await runStep(job, 'main', inputs);
    assert.equal(main.code, 1, transcript(main));
    assert.ok(main.closeMs < 10_000, `main took ${Math.round(main.closeMs)} ms to fail`);
    assert.equal(main.errors.length, 1, transcript(main));
    assert.match(main.errors[0].message, /^port: cannot listen on 127\.0\.0\.1:\d+: the address is already in use \(EADDRINUSE\)/);
    assert.ok(!main.errors[0].message.includes('\n'), `not one line: ${main.errors[0].message}`);
    assert.deepEqual(main.state, {});
    await waitFor('the daemon that could not listen to exit', () => processesMentioning(job.runnerTemp).length === 0, 3000);
    const post = await runPost(job, main, inputs);
    assert.equal(post.code, 0, transcript(post));
    assert.deepEqual(post.annotations, []);
  } finally {
    await new Promise<void>((resolve) => squatter.close(() => resolve()));
  }
});

test('a daemon killed mid-job still gets a post step: a warning and a partial report', async () => {
  const job = newJob();
  const upstream = await newUpstream();
  const inputs = { target: upstream.target, name: 'killed' };
  const main = await runStep(job, 'main', inputs);
  assertStepOk(main, 'main');
  assert.equal(await callThrough(Number(main.outputs.port), 'before the kill'), 're:before the kill');
  await waitFor('the call in the stats file', () => readStats(main.outputs['stats-file'])?.calls.answered === 1, 2500);
  const pid = daemonPid(main);
  process.kill(pid, 'SIGKILL');
  await waitFor('the daemon to die', () => processGone(pid));

  const post = await runPost(job, main, inputs);
  assert.equal(post.code, 0, transcript(post));
  assert.ok(post.closeMs < 10_000, `post took ${Math.round(post.closeMs)} ms`);
  assert.equal(post.warnings.length, 1, transcript(post));
  assert.match(post.warnings[0].message, /^killed: the proxy had already exited; reporting from its last flushed statistics/);
  assert.deepEqual(post.errors, []);
  assert.match(post.summary, /^### ℹ️ killed: 1 call, 0 delayed/);
  assert.match(post.summary, /\| answered \| 1 \|/);
  assert.equal(readStats(main.outputs['stats-file'])?.endedAt, null, 'a killed daemon cannot have written final stats');
});

test('post ends promptly with a call still waiting, and reports it unfinished', async () => {
  const job = newJob();
  const upstream = await newUpstream();
  const inputs = { target: upstream.target, name: 'waiting', delay: '30s' };
  const main = await runStep(job, 'main', inputs);
  assertStepOk(main, 'main');
  const client = net.connect(Number(main.outputs.port), '127.0.0.1', () => client.write('still waiting'));
  const clientClosed = new Promise<void>((resolve) => client.once('close', () => resolve()));
  let answered = false;
  client.on('error', () => {});
  client.on('data', () => (answered = true));
  await waitFor('the pending call in the stats file', () => readStats(main.outputs['stats-file'])?.calls.pending === 1, 2500);

  const post = await runPost(job, main, inputs);
  assertStepOk(post, 'post');
  assert.deepEqual(post.warnings, [], `the daemon did not stop on SIGTERM in time: ${transcript(post)}`);
  assert.ok(post.closeMs < 5000, `post took ${Math.round(post.closeMs)} ms with a call waiting`);
  await clientClosed;
  assert.equal(answered, false, 'answered through a 30s delay');
  const stats = readStats(main.outputs['stats-file']);
  assert.deepEqual([stats?.calls.total, stats?.calls.unfinished, stats?.calls.pending], [1, 1, 0]);
  assert.match(post.summary, /\| unfinished \(at shutdown\) \| 1 \| \d/);
});

test('two instances in one job run side by side and both report', async () => {
  const job = newJob();
  const [first, second] = await Promise.all([newUpstream(() => Buffer.from('first')), newUpstream(() => Buffer.from('second'))]);
  const inputsA = { target: first.target, name: 'service-a' };
  const inputsB = { target: second.target, name: 'service-b', delay: '50ms' };
  const mainA = await runStep(job, 'main', inputsA);
  const mainB = await runStep(job, 'main', inputsB);
  assertStepOk(mainA, 'main A');
  assertStepOk(mainB, 'main B');
  assert.notEqual(mainA.outputs.port, mainB.outputs.port);
  for (const name of ['stats-file', 'log-file', 'control-url']) assert.notEqual(mainA.outputs[name], mainB.outputs[name], name);
  assert.notEqual(daemonPid(mainA), daemonPid(mainB));

  assert.equal(await callThrough(Number(mainA.outputs.port), 'a'), 'first');
  assert.equal(await callThrough(Number(mainB.outputs.port), 'b'), 'second');
  assert.equal(await callThrough(Number(mainB.outputs.port), 'b'), 'second');

  // Posts run in reverse order of their mains, as on the runner.
  const postB = await runPost(job, mainB, inputsB);
  const postA = await runPost(job, mainA, inputsA);
  assertStepOk(postB, 'post B');
  assertStepOk(postA, 'post A');
  assert.match(postA.summary, /^### ℹ️ service-a: 1 call, 0 delayed/);
  assert.match(postB.summary, /^### ℹ️ service-b: 2 calls, 2 delayed/);
  const summary = job.summary();
  assert.ok(summary.includes(postA.summary) && summary.includes(postB.summary), 'the job summary lacks one of the reports');
  assert.equal(readStats(mainA.outputs['stats-file'])?.calls.total, 1);
  assert.equal(readStats(mainB.outputs['stats-file'])?.calls.total, 2);
  assert.equal(await connectResult(Number(mainA.outputs.port)), 'ECONNREFUSED');
  assert.equal(await connectResult(Number(mainB.outputs.port)), 'ECONNREFUSED');
});

describe('the run input', () => {
  const client = [
    "const net = require('node:net');",
    "const s = net.connect(Number(process.env.SLOW_PROXY_PORT), '127.0.0.1', () => s.write('from run'));",
    "s.on('data', (d) => { console.log('client got ' + d + ' via ' + process.env.SLOW_PROXY_ADDRESS); s.end(); });",
  ].join(' ');

  test('runs the command with the address set, then stops the proxy and reports in the same step', async () => {
    const job = newJob();
    const upstream = await newUpstream();
    const inputs = { target: upstream.target, name: 'run-mode', run: `node -e "${client}"` };
    const main = await runStep(job, 'main', inputs);
    assertStepOk(main, 'main');
    const port = Number(main.outputs.port);
    assert.ok(main.stdout.includes(`client got re:from run via 127.0.0.1:${port}`), transcript(main));
    assert.ok(main.closeMs < 10_000, `main took ${Math.round(main.closeMs)} ms`);
    assert.equal(await connectResult(port), 'ECONNREFUSED', 'the proxy still listens after a run step');
    assert.ok(processGone(daemonPid(main)), 'the daemon still runs after a run step');
    assert.match(main.summary, /^### ℹ️ run-mode: 1 call/);
    assert.ok(readStats(main.outputs['stats-file'])?.endedAt, 'the stats are not final after a run step');

    const post = await runPost(job, main, inputs);
    assert.equal(post.code, 0, transcript(post));
    assert.equal(post.stdout, '', 'post did something after a run step');
    assert.equal(post.summary, '');
  });

  test('a failing command fails the step, after the report', async () => {
    const job = newJob();
    const upstream = await newUpstream();
    const inputs = { target: upstream.target, name: 'run-fails', run: 'node -e "process.exit(3)"' };
    const main = await runStep(job, 'main', inputs);
    assert.equal(main.code, 1, transcript(main));
    assert.equal(main.errors.length, 1, transcript(main));
    assert.equal(main.errors[0].message, 'run: the command exited with code 3');
    assert.match(main.summary, /^### .* run-fails: no calls went through the proxy/);
    assert.equal(await connectResult(Number(main.outputs.port)), 'ECONNREFUSED');
    const post = await runPost(job, main, inputs);
    assert.equal(post.code, 0, transcript(post));
    assert.equal(post.stdout, '');
  });
});

test('SLOW_PROXY_TOKEN is exported and masked, and the control API needs it', async () => {
  const job = newJob();
  const upstream = await newUpstream();
  const inputs = { target: upstream.target };
  const main = await runStep(job, 'main', inputs);
  try {
    assertStepOk(main, 'main');
    const token = main.exported.SLOW_PROXY_TOKEN;
    assert.match(token ?? '', /^[0-9a-f]{32,}$/, `exported: ${JSON.stringify(main.exported)}`);
    assert.deepEqual(job.env().SLOW_PROXY_TOKEN, token);
    assert.equal(main.exported.SLOW_PROXY_CONTROL_URL, main.outputs['control-url']);
    assert.ok(main.masks.includes(token), 'the token is not masked');
    // The mask must come before anything else could print the token.
    const lines = main.stdout.split('\n').filter((line) => line.includes(token));
    assert.deepEqual(lines, [`::add-mask::${token}`], 'the token appears in the log outside its mask command');

    const url = `${main.outputs['control-url']}/health`;
    const withToken = await httpGet(url, { authorization: `Bearer ${token}` });
    assert.equal(withToken.status, 200, withToken.body);
    assert.equal((JSON.parse(withToken.body) as { ok: boolean }).ok, true);
    assert.equal((await httpGet(url, {})).status, 401);
    const wrong = `${token.slice(0, -1)}${token.endsWith('0') ? '1' : '0'}`;
    assert.equal((await httpGet(url, { authorization: `Bearer ${wrong}` })).status, 401);
  } finally {
    const post = await runPost(job, main, inputs);
    assertStepOk(post, 'post');
  }
});

function httpGet(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (s: string) => (body += s));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

test('log-payload: previews in the summary, with a Redis AUTH password redacted everywhere', async () => {
  const job = newJob();
  const upstream = await newUpstream(() => Buffer.from('+OK\r\n'));
  const inputs = { target: upstream.target, name: 'redis', 'log-payload': 'true' };
  const main = await runStep(job, 'main', inputs);
  assertStepOk(main, 'main');
  const port = Number(main.outputs.port);
  // Over one connection, as a client sends them: RESP AUTH, then a command.
  const socket = net.connect(port, '127.0.0.1');
  const replies: string[] = [];
  const replied = (n: number) => waitFor(`${n} replies`, () => replies.length >= n);
  socket.on('data', (d) => replies.push(d.toString()));
  socket.write('*2\r\n$4\r\nAUTH\r\n$7\r\nhunter2\r\n');
  await replied(1);
  socket.write('*2\r\n$3\r\nGET\r\n$9\r\nvisible-1\r\n');
  await replied(2);
  socket.end();
  // An inline AUTH on a second connection.
  assert.equal(await callThrough(port, 'AUTH default s3cr3t-inline\r\n'), '+OK\r\n');
  assert.ok(upstream.received().includes('hunter2'), 'the password did not reach the upstream: the proxy must forward it unchanged');

  const post = await runPost(job, main, inputs);
  assertStepOk(post, 'post');
  assert.match(post.summary, /Payload previews/);
  assert.match(post.summary, /visible-1/);
  assert.match(post.summary, /\+OK/);
  for (const secret of ['hunter2', 's3cr3t-inline']) {
    assert.ok(!post.summary.includes(secret), `${secret} in the job summary`);
    assert.ok(!post.stdout.includes(secret), `${secret} in the step log`);
    assert.ok(!readFileSync(main.outputs['log-file'], 'utf8').includes(secret), `${secret} in the traffic log`);
  }
  assert.match(readFileSync(main.outputs['log-file'], 'utf8'), /\[redacted\]/);
});

test('pcap: the pcap-file output is a capture of the conversation', async () => {
  const job = newJob();
  const upstream = await newUpstream();
  const inputs = { target: upstream.target, pcap: 'true' };
  const main = await runStep(job, 'main', inputs);
  assertStepOk(main, 'main');
  const pcapFile = main.outputs['pcap-file'];
  assert.ok(pcapFile?.startsWith(job.runnerTemp), `pcap-file output: ${pcapFile}`);
  assert.equal(await callThrough(Number(main.outputs.port), 'captured-request'), 're:captured-request');
  const post = await runPost(job, main, inputs);
  assertStepOk(post, 'post');
  assert.ok(existsSync(pcapFile), 'no pcap file');
  const capture = readFileSync(pcapFile);
  const magic = capture.readUInt32LE(0);
  assert.ok([0xa1b2c3d4, 0xa1b23c4d].includes(magic), `pcap magic: 0x${magic.toString(16)}`);
  assert.ok(capture.includes('captured-request') && capture.includes('re:captured-request'), 'the capture lacks the conversation');
});
