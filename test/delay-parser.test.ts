import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { InputError } from '../src/errors.js';
import { parseDelay } from '../src/policy/delay.js';
import { parseDelayPer, parseDirection, parseSeed } from '../src/policy/options.js';

/** Each valid input with its canonical text. */
const VALID: Array<[string, string]> = [
  ['500ms', '500ms'],
  ['0', '0ms'],
  ['1.5s', '1.5s'],
  ['2m', '2m'],
  ['60s', '1m'],
  ['1500ms', '1.5s'],
  ['0.5ms', '0.5ms'],
  ['100ms..2s', '100ms..2s'],
  [' 100ms .. 2s ', '100ms..2s'],
  ['1s..1s', '1s..1s'],
  ['ramp(from=0ms, step=250ms, to=5s)', 'ramp(from=0ms, step=250ms, to=5s)'],
  ['ramp( to = 5s ,from=0,step=250ms )', 'ramp(from=0ms, step=250ms, to=5s)'],
  ['ramp(from=1s, step=1s, to=1s)', 'ramp(from=1s, step=1s, to=1s)'],
  ['normal(mean=300ms, stddev=50ms)', 'normal(mean=300ms, stddev=50ms)'],
  ['normal(stddev=0, mean=1s)', 'normal(mean=1s, stddev=0ms)'],
  ['lognormal(median=200ms, p99=2s)', 'lognormal(median=200ms, p99=2s)'],
  ['lognormal(p99=2000ms,median=0.2s)', 'lognormal(median=200ms, p99=2s)'],
  ['spike(every=10, delay=30s)', 'spike(every=10, delay=30s)'],
  ['spike(delay=30s, every=10, else=50ms)', 'spike(every=10, delay=30s, else=50ms)'],
  ['spike(every=10, delay=30s, else=0ms)', 'spike(every=10, delay=30s)'],
  ['phases(0s=0ms, 30s=2s, 90s=0ms)', 'phases(0ms=0ms, 30s=2s, 90s=0ms)'],
  ['phases(30s=2s)', 'phases(30s=2s)'],
  ['200ms + 0ms..50ms', '200ms + 0ms..50ms'],
  ['200ms+0ms..50ms+spike(every=2,delay=1s)', '200ms + 0ms..50ms + spike(every=2, delay=1s)'],
  ['\t1s\n+\n2s ', '1s + 2s'],
];

describe('parseDelay: valid forms', () => {
  for (const [input, canonical] of VALID) {
    test(`${JSON.stringify(input)} reads as ${canonical} and round-trips`, () => {
      const policy = parseDelay(input);
      assert.equal(policy.text, canonical);
      assert.equal(parseDelay(policy.text).text, policy.text);
    });
  }
});

const RAMP = 'e.g. ramp(from=0ms, step=250ms, to=5s)';
const SUM = 'e.g. 200ms + 0ms..50ms';
const FIXED = 'e.g. 500ms';
const RANGE = 'e.g. 100ms..2s';
const NORMAL = 'e.g. normal(mean=300ms, stddev=50ms)';
const LOGNORMAL = 'e.g. lognormal(median=200ms, p99=2s)';
const SPIKE = 'e.g. spike(every=10, delay=30s)';
const PHASES = 'e.g. phases(0s=0ms, 30s=2s, 90s=0ms)';

/** Each malformed input with the exact message after `delay: cannot read "<input>": `. */
const INVALID: Array<[string, string]> = [
  ['', `the delay is empty, ${FIXED}`],
  ['   ', `the delay is empty, ${FIXED}`],
  ['-5ms', `"-5ms" is negative; durations start at 0, ${FIXED}`],
  ['5x', `"5x" has an unknown unit "x" (use ms, s or m), ${FIXED}`],
  ['5h', `"5h" has an unknown unit "h" (use ms, s or m), ${FIXED}`],
  ['5MS', `"5MS" has an unknown unit "MS" (use ms, s or m), ${FIXED}`],
  ['500', `"500" needs a unit (ms, s or m), ${FIXED}`],
  ['500 ms', `"500" needs a unit (ms, s or m), ${FIXED}`],
  ['fast', `"fast" is not a duration (a number with ms, s or m), ${FIXED}`],
  ['1441m', `"1441m" is longer than 24 hours, ${FIXED}`],
  ['2s..100ms', `the range 2s..100ms goes down (write the smaller bound first), ${RANGE}`],
  ['..2s', `the range "..2s" needs a lower bound, ${RANGE}`],
  ['1s..', `the range "1s.." needs an upper bound, ${RANGE}`],
  ['1s..-2s', `"-2s" is negative; durations start at 0, ${RANGE}`],
  ['200ms +', `"+" needs a term on each side, ${SUM}`],
  ['+ 200ms', `"+" needs a term on each side, ${SUM}`],
  ['200ms ++ 1s', `"+" needs a term on each side, ${SUM}`],
  ['500ms foo', `unexpected "foo" after "500ms", ${SUM}`],
  ['ramp(from=0ms, step=250ms, to=5s) x', `unexpected "x" after "ramp(from=0ms, step=250ms, to=5s)", ${SUM}`],
  ['ramp(from=0ms, step=250ms, to=5s))', `unexpected ")" after "ramp(from=0ms, step=250ms, to=5s)", ${SUM}`],
  ['(500ms)', `expected a duration at "(500ms)", ${FIXED}`],
  ['wobble(x=1)', `unknown delay form "wobble(" (use ramp, normal, lognormal, spike or phases), ${RAMP}`],
  ['ramp', `ramp needs its arguments in parentheses, ${RAMP}`],
  ['ramp(from=0ms, to=1s)', `ramp needs step=<duration>, ${RAMP}`],
  ['ramp()', `ramp needs from=<duration>, ${RAMP}`],
  ['ramp(from=0ms, step=1s, to=2s, size=3)', `ramp has no argument "size" (it takes from, step, to), ${RAMP}`],
  ['ramp(from=0ms, step=1s, to=2s, step=2s)', `ramp has step twice, ${RAMP}`],
  ['ramp(from=0ms, step=0ms, to=1s)', `ramp's step must be above 0, ${RAMP}`],
  ['ramp(from=2s, step=1s, to=1s)', `ramp's from (2s) is above its to (1s), ${RAMP}`],
  ['ramp(from=0ms,, step=1s, to=2s)', `ramp has an empty argument, ${RAMP}`],
  ['ramp(from=0ms, step=1s, to=2s,)', `ramp has an empty argument, ${RAMP}`],
  ['ramp(from=0ms, step=1s, to=2s', `ramp( is missing its closing ")", ${RAMP}`],
  ['ramp(0ms, step=1s, to=2s)', `ramp's argument "0ms" has no name, ${RAMP}`],
  ['ramp(from=, step=1s, to=2s)', `ramp's from= has no value, ${RAMP}`],
  ['ramp(from=0ms step=1s, to=2s)', `unexpected "step=1s, to=2s)" in ramp(...), ${RAMP}`],
  ['normal(mean=300ms)', `normal needs stddev=<duration>, ${NORMAL}`],
  ['normal(mean=300ms, stddev=-5ms)', `"-5ms" is negative; durations start at 0, ${NORMAL}`],
  ['lognormal(median=2s, p99=1s)', `lognormal's p99 (1s) is below its median (2s), ${LOGNORMAL}`],
  ['lognormal(median=0ms, p99=1s)', `lognormal's median must be above 0, ${LOGNORMAL}`],
  ['spike(every=0, delay=30s)', `spike's every must be at least 1, ${SPIKE}`],
  ['spike(every=2.5, delay=30s)', `spike's every must be a whole number, not "2.5", ${SPIKE}`],
  ['spike(every=-1, delay=30s)', `spike's every must be a whole number, not "-1", ${SPIKE}`],
  ['spike(delay=30s)', `spike needs every=<count>, ${SPIKE}`],
  ['phases()', `phases needs at least one time=delay pair, ${PHASES}`],
  ['phases(0s=0ms, 90s=1s, 30s=2s)', `phases' times must increase (30s comes after 90s), ${PHASES}`],
  ['phases(0s=0ms, 30s=1s, 30000ms=2s)', `phases has 30s twice, ${PHASES}`],
  ['phases(0s=fast)', `"fast" is not a duration (a number with ms, s or m), ${PHASES}`],
];

describe('parseDelay: malformed input', () => {
  test('the table is long enough to mean something', () => {
    assert.ok(INVALID.length >= 30);
  });
  for (const [input, why] of INVALID) {
    test(JSON.stringify(input), () => {
      assert.throws(
        () => parseDelay(input),
        (err: unknown) => {
          assert.ok(err instanceof InputError);
          assert.equal(err.message, `delay: cannot read ${JSON.stringify(input)}: ${why}`);
          assert.equal(err.input, 'delay');
          assert.equal(err.value, input);
          return true;
        },
      );
    });
  }
  test('the input name is the one given', () => {
    assert.throws(() => parseDelay('5x', 'delay-after'), { message: 'delay-after: cannot read "5x": "5x" has an unknown unit "x" (use ms, s or m), e.g. 500ms' });
  });
});

describe('delay-per, direction and seed', () => {
  test('delay-per takes call, chunk or connection', () => {
    assert.equal(parseDelayPer('delay-per', 'call'), 'call');
    assert.equal(parseDelayPer('delay-per', ' chunk '), 'chunk');
    assert.equal(parseDelayPer('delay-per', 'connection'), 'connection');
    assert.throws(() => parseDelayPer('delay-per', 'calls'), { message: 'delay-per: cannot read "calls": use call, chunk or connection, e.g. call' });
    assert.throws(() => parseDelayPer('delay-per', ''), { message: 'delay-per: cannot read "": use call, chunk or connection, e.g. call' });
  });

  test('direction takes upstream, downstream or both', () => {
    assert.equal(parseDirection('direction', 'upstream'), 'upstream');
    assert.equal(parseDirection('direction', 'downstream'), 'downstream');
    assert.equal(parseDirection('direction', 'both '), 'both');
    assert.throws(() => parseDirection('direction', 'up'), {
      message: 'direction: cannot read "up": "up" is not a direction (use upstream, downstream or both), e.g. downstream',
    });
  });

  test('seed is a whole number from 0 to 2^32-1', () => {
    assert.equal(parseSeed('seed', '0'), 0);
    assert.equal(parseSeed('seed', ' 42 '), 42);
    assert.equal(parseSeed('seed', '4294967295'), 4294967295);
    for (const bad of ['4294967296', '-1', '1.5', 'abc', '', '1e3']) {
      assert.throws(() => parseSeed('seed', bad), {
        message: `seed: cannot read ${JSON.stringify(bad)}: a seed is a whole number from 0 to 4294967295, e.g. 42`,
      });
    }
  });
});
