// The `slow-proxy` command as a user runs it: a child process with real traffic through it,
// stopped by a signal, judged by its exit code, its report and the files it leaves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StatusLine } from '../src/cli/status-line.js';
import { callThrough, startUpstream } from './support/action-runner.js';
import { BUNDLE, CliProcess, ROOT, runCli, transcriptOf } from './support/cli-process.js';

const READY = /slow-proxy listening on 127\.0\.0\.1:(\d+) -> (\S+) \((.*)\)\n/;

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'cli-test-'));
}

test('runs until SIGTERM, then prints the report and writes the files; exit 0', async () => {
  const upstream = await startUpstream();
  const dir = tempDir();
  const statsFile = path.join(dir, 'nested', 'stats.json');
  const cli = new CliProcess(['--target', upstream.target, '--delay', '50ms', '--seed', '7', '--name', 'cli-test', '--stats-file', statsFile]);
  try {
    const ready = await cli.waitForStdout(READY);
    assert.equal(ready[2], upstream.target, 'the ready line names the target');
    assert.equal(ready[3], 'delay 50ms per call, upstream; seed 7', 'the ready line gives the policy and the seed');
    const logFile = (await cli.waitForStdout(/traffic log: +(\S+)/))[1];
    assert.ok(logFile.startsWith(os.tmpdir()), `the traffic log defaults to the temp dir: ${logFile}`);
    assert.ok(!cli.stdout.includes('control API'), 'no control API without --control-port');

    const port = Number(ready[1]);
    for (const word of ['one', 'two', 'three']) assert.equal(await callThrough(port, word), `re:${word}`, 'traffic goes through');

    cli.child.kill('SIGTERM');
    const result = await cli.exited;
    assert.equal(result.code, 0, transcriptOf(result));
    assert.match(result.stderr, /SIGTERM: stopping/, transcriptOf(result));
    assert.match(result.stdout, /\nanswered +3 /, `the report counts the calls\n${transcriptOf(result)}`);
    assert.match(result.stdout, /Settings\n/, 'the report has its settings section');
    assert.ok(result.stdout.includes(`stats:       ${statsFile}\n`), `the files are listed at the end\n${result.stdout}`);
    assert.ok(!result.stdout.includes('\r') && !result.stdout.includes('\u001b'), 'no status line when stdout is not a terminal');

    const stats = JSON.parse(fs.readFileSync(statsFile, 'utf8'));
    assert.equal(stats.calls.answered, 3, 'the stats file has the final figures');
    assert.notEqual(stats.endedAt, null, 'the stats file is the final one');
    assert.equal(stats.seed, 7, 'the seed flag reached the session');
    const events = fs.readFileSync(logFile, 'utf8').trim().split('\n').map((line) => JSON.parse(line).event);
    assert.ok(events.includes('open') && events.includes('close'), `the traffic log has the connections: ${events.join(',')}`);
  } finally {
    cli.child.kill('SIGKILL');
    await upstream.close();
  }
});

test('a call over --max-wait fails the gate: report shows it, exit 1 (stopped with SIGINT)', async () => {
  const upstream = await startUpstream();
  const dir = tempDir();
  const cli = new CliProcess(['--target', upstream.target, '--delay', '300ms', '--max-wait', '100ms', '--name', 'gated', '--stats-file', path.join(dir, 's.json'), '--log-file', path.join(dir, 't.jsonl')]);
  try {
    const port = Number((await cli.waitForStdout(READY))[1]);
    const started = Date.now();
    assert.equal(await callThrough(port, 'slow'), 're:slow', 'the call is answered');
    const waited = Date.now() - started;
    assert.ok(waited >= 280 && waited < 1500, `the 300 ms delay applied: waited ${waited} ms`);
    cli.child.kill('SIGINT');
    const result = await cli.exited;
    assert.equal(result.code, 1, transcriptOf(result));
    assert.match(result.stdout, /^FAIL +gated: /m, `the headline says FAIL\n${result.stdout}`);
    assert.match(result.stdout, /max-wait +100 ms +[\d.]+ m?s \(1 of 1 call over\) +FAIL /, `the gates table shows the failing max-wait gate\n${result.stdout}`);
  } finally {
    cli.child.kill('SIGKILL');
    await upstream.close();
  }
});

test('bad flags and bad values: one line on stderr, exit 2, no stack trace', async () => {
  const cases: [string[], string][] = [
    [['--target', '127.0.0.1:1', '--bogus'], "slow-proxy: unknown option '--bogus'; see slow-proxy --help"],
    [['--target'], "slow-proxy: option '--target <value>' argument missing; see slow-proxy --help"],
    [['--target', '127.0.0.1:1', '--log-payload=yes'], "slow-proxy: option '--log-payload' does not take an argument; see slow-proxy --help"],
    [['frobnicate'], "slow-proxy: unknown command 'frobnicate' (the commands are ctl and demo, the proxy itself takes --target); see slow-proxy --help"],
    [[], 'target: cannot read "": a target is required as host:port, e.g. localhost:5432'],
    [
      ['--target', '127.0.0.1:1', '--delay', 'ramp(from=0ms, to=1s)'],
      'delay: cannot read "ramp(from=0ms, to=1s)": ramp needs step=<duration>, e.g. ramp(from=0ms, step=250ms, to=5s)',
    ],
    [['--target', '127.0.0.1:1', '--control-port', '70000'], 'control-port: cannot read "70000": port 70000 is out of range (0-65535), e.g. 0'],
  ];
  const results = await Promise.all(cases.map(([args]) => runCli(args)));
  results.forEach((result, i) => {
    const [args, message] = cases[i];
    assert.equal(result.code, 2, `${args.join(' ')}: ${transcriptOf(result)}`);
    assert.equal(result.stderr, `${message}\n`, `${args.join(' ')}: exactly one line`);
    assert.equal(result.stdout, '', `${args.join(' ')}: nothing on stdout`);
  });
});

test('--help documents the flags, the delay forms, the faults and ctl; --version prints the version', async () => {
  const [help, version] = await Promise.all([runCli(['--help']), runCli(['--version'])]);
  assert.equal(help.code, 0, transcriptOf(help));
  for (const text of ['--target HOST:PORT', '--fault SPEC', '--control-port N', 'ramp(from=0ms, step=250ms, to=5s)', 'reset after=500ms', 'slow-proxy ctl delay 5s', 'OS temp dir']) {
    assert.ok(help.stdout.includes(text), `--help mentions ${text}`);
  }
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  assert.equal(version.code, 0, transcriptOf(version));
  assert.equal(version.stdout, `${pkg.version}\n`, 'the version of package.json');
});

test('the built bundle (the package bin) starts with a shebang and runs a proxy to its report', async () => {
  assert.ok(fs.readFileSync(BUNDLE, 'utf8').startsWith('#!/usr/bin/env node\n'), `${BUNDLE} starts with a shebang`);
  const upstream = await startUpstream();
  const dir = tempDir();
  const cli = new CliProcess(['--target', upstream.target, '--seed', '1', '--stats-file', path.join(dir, 's.json'), '--log-file', path.join(dir, 't.jsonl')], { bundle: true });
  try {
    const port = Number((await cli.waitForStdout(READY))[1]);
    assert.equal(await callThrough(port, 'x'), 're:x', 'traffic goes through the bundled proxy');
    cli.child.kill('SIGTERM');
    const result = await cli.exited;
    assert.equal(result.code, 0, transcriptOf(result));
    assert.match(result.stdout, /\nanswered +1 /, `the report counts the call\n${result.stdout}`);
  } finally {
    cli.child.kill('SIGKILL');
    await upstream.close();
  }
});

test('the status line is drawn in place on a terminal only, one column short of its width', async () => {
  const fakeStream = (isTTY: boolean) => {
    const writes: string[] = [];
    const stream = { isTTY, columns: 30, write: (text: string) => writes.push(text) } as unknown as NodeJS.WriteStream;
    return { stream, writes };
  };
  const tty = fakeStream(true);
  const pipe = fakeStream(false);
  const lines = [new StatusLine(tty.stream, () => 'x'.repeat(100)), new StatusLine(pipe.stream, () => 'x'.repeat(100))];
  for (const line of lines) line.start();
  await new Promise((r) => setTimeout(r, 600));
  for (const line of lines) line.stop();
  assert.equal(pipe.writes.length, 0, 'nothing is written when the stream is not a terminal');
  const draws = tty.writes.filter((w) => w.includes('x'));
  assert.ok(draws.length >= 2, `redrawn a few times a second: ${draws.length} draws in 600 ms`);
  assert.equal(draws[0], `\r\u001b[2K${'x'.repeat(29)}`, 'each draw clears the line and fits the width');
  assert.equal(tty.writes.at(-1), '\r\u001b[2K', 'stop clears the line');
});
