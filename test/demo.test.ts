// `npm start` (`slow-proxy demo`): with nothing but the package, the whole idea runs to its end:
// calls answered, calls given up on when the delay passes the app's timeout, then the report.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { runCli, transcriptOf } from './support/cli-process.js';

test('the demo runs to completion: each call, gave-up calls, the report, its files; exit 0', { timeout: 70_000 }, async () => {
  const started = Date.now();
  const result = await runCli(['demo'], { timeoutMs: 60_000 });
  const tookMs = Date.now() - started;
  assert.equal(result.code, 0, transcriptOf(result));
  assert.ok(tookMs < 30_000, `under 30 s: took ${tookMs} ms`);

  const callLines = result.stdout.split('\n').filter((line) => /^ +\d+ +[\d.]+ m?s +[\d.]+ m?s +(answered "|gave up after|the connection closed)/.test(line));
  assert.equal(callLines.length, 15, `one line per call\n${result.stdout}`);
  const gaveUp = callLines.filter((line) => line.includes('gave up after 1 s; reconnecting'));
  const answered = callLines.filter((line) => /answered "OK \d+"/.test(line));
  assert.ok(gaveUp.length >= 3, `some calls were given up on\n${result.stdout}`);
  assert.ok(answered.length >= 5, `some calls were answered\n${result.stdout}`);
  assert.match(callLines[6], /^ +7 +1\.8 s +/, `call 7 got the ramp's top delay\n${callLines.join('\n')}`);

  assert.match(result.stdout, /\ngave up \(client closed\) +[1-9]\d* /, `the report counts the gave-up calls\n${result.stdout}`);
  assert.match(result.stdout, /\nGates\n/, 'the report has the max-wait gate');
  const statsFile = /stats: +(\S+)/.exec(result.stdout)?.[1];
  assert.ok(statsFile && fs.existsSync(statsFile), `the stats file it names exists: ${statsFile}`);
  const stats = JSON.parse(fs.readFileSync(statsFile, 'utf8'));
  assert.equal(stats.calls.total, 15, 'the stats file has every call');
  assert.equal(stats.calls.gaveUp, gaveUp.length, 'the stats agree with what the app saw');
});
