import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { InputError } from '../src/errors.js';
import { formatFault, parseFault, parseFaults } from '../src/policy/faults.js';

describe('parseFault: valid lines', () => {
  const cases: Array<[string, string]> = [
    ['connect-delay 2s', 'connect-delay 2s'],
    ['hang', 'hang'],
    ['hang direction=upstream', 'hang'],
    ['hang direction=downstream calls=3', 'hang direction=downstream calls=3'],
    ['reset after=500ms', 'reset after=500ms'],
    ['close after = 1s  calls = 10 .. 20', 'close after=1s calls=10..20'],
    ['refuse probability=25%', 'refuse probability=25%'],
    ['refuse probability=100%', 'refuse'],
    ['refuse probability=0%', 'refuse probability=0%'],
    ['bandwidth 64KB/s', 'bandwidth 64KB/s'],
    ['bandwidth 64KiB/s direction=upstream', 'bandwidth 64KiB/s direction=upstream'],
    ['slow-close 2000ms', 'slow-close 2s'],
    ['slice 64B delay=5ms', 'slice 64B delay=5ms'],
    ['slice 1KiB', 'slice 1KiB delay=0ms'],
    ['limit-data 10KB', 'limit-data 10KB'],
    ['  limit-data 10000B probability=12.5% calls=7  ', 'limit-data 10KB calls=7 probability=12.5%'],
  ];
  for (const [line, canonical] of cases) {
    test(`${JSON.stringify(line)} reads as ${JSON.stringify(canonical)} and round-trips`, () => {
      const spec = parseFault(line);
      assert.equal(formatFault(spec), canonical);
      assert.deepEqual(parseFault(canonical), spec);
    });
  }

  test('the parsed spec carries values and scopes', () => {
    assert.deepEqual(parseFault('bandwidth 64KB/s probability=25% calls=2..4'), {
      name: 'bandwidth',
      params: { bytesPerSecond: 64_000 },
      scope: { probability: 25, direction: 'both', calls: { first: 2, last: 4 } },
    });
    assert.deepEqual(parseFault('slice 64B delay=5ms').params, { pieceBytes: 64, delayMs: 5 });
    assert.deepEqual(parseFault('refuse').scope, { probability: 100, direction: null, calls: null });
    assert.equal(parseFault('slow-close 1s').scope.direction, 'downstream');
    assert.equal(parseFault('limit-data 1KB').scope.direction, 'downstream');
  });
});

describe('parseFaults', () => {
  test('one per line; blank lines and # comments are skipped', () => {
    const specs = parseFaults('# flaky network\n\nbandwidth 64KB/s   # slow link\n  \nrefuse probability=10%\r\n');
    assert.deepEqual(specs.map(formatFault), ['bandwidth 64KB/s', 'refuse probability=10%']);
    assert.deepEqual(parseFaults(['hang calls=3', '', '# nothing']).map(formatFault), ['hang calls=3']);
    assert.deepEqual(parseFaults(''), []);
  });

  test('errors name the line', () => {
    assert.throws(() => parseFaults('bandwidth 64KB/s\n# ok\nbandwidth 64KB'), {
      message: 'faults line 3: cannot read "bandwidth 64KB": "64KB" needs "/s" (per second), e.g. bandwidth 64KB/s',
    });
  });
});

const FAULTS = 'connect-delay, hang, reset, close, refuse, bandwidth, slow-close, slice or limit-data';

/** Each malformed line with the exact message after `faults: cannot read "<line>": `. */
const INVALID: Array<[string, string]> = [
  ['', 'the fault line is empty, e.g. bandwidth 64KB/s'],
  ['=5', 'a fault line starts with the name of a fault, e.g. bandwidth 64KB/s'],
  ['bandwidht 64KB/s', `unknown fault "bandwidht" (use ${FAULTS}), e.g. bandwidth 64KB/s`],
  ['bandwidth', 'bandwidth needs a rate, e.g. bandwidth 64KB/s'],
  ['bandwidth 64KB', '"64KB" needs "/s" (per second), e.g. bandwidth 64KB/s'],
  ['bandwidth 64KB/s 2KB/s', 'unexpected "2KB/s" after "bandwidth 64KB/s", e.g. bandwidth 64KB/s'],
  ['bandwidth 64KB/s probability=', "bandwidth's probability= has no value, e.g. bandwidth 64KB/s"],
  ['hang 5s', 'hang takes no value, not "5s", e.g. hang'],
  ['hang =5', '"=5" needs a name before "=", e.g. hang'],
  ['hang direction=sideways', '"sideways" is not a direction (use upstream, downstream or both), e.g. hang direction=downstream'],
  ['hang direction=up direction=down', 'hang has direction twice, e.g. hang'],
  ['refuse direction=upstream', 'refuse acts on the whole connection and takes no direction=, e.g. refuse'],
  ['refuse after=1s', 'refuse has no argument "after" (it takes probability, calls), e.g. refuse'],
  ['refuse probability=150%', 'probability must be between 0% and 100%, not 150%, e.g. refuse probability=25%'],
  ['refuse probability=-5%', 'probability must be between 0% and 100%, not -5%, e.g. refuse probability=25%'],
  ['refuse probability=25', 'probability=25 needs a % sign, e.g. refuse probability=25%'],
  ['refuse probability=often', 'probability must be a percentage, not "often", e.g. refuse probability=25%'],
  ['refuse calls=0', 'calls start at 1, e.g. refuse calls=10..20'],
  ['refuse calls=20..10', 'calls=20..10 goes down (write the smaller number first), e.g. refuse calls=10..20'],
  ['refuse calls=10..', 'calls must be a call number or a range such as 10..20, not "10..", e.g. refuse calls=10..20'],
  ['reset', 'reset needs after=<duration>, e.g. reset after=500ms'],
  ['reset after=-1s', '"-1s" is negative; durations start at 0, e.g. reset after=500ms'],
  ['close after=1', '"1" needs a unit (ms, s or m), e.g. close after=1s'],
  ['connect-delay 5x', '"5x" has an unknown unit "x" (use ms, s or m), e.g. connect-delay 2s'],
  ['slow-close', 'slow-close needs a duration, e.g. slow-close 2s'],
  ['slice 64B size=3', 'slice has no argument "size" (it takes delay, direction, probability, calls), e.g. slice 64B delay=5ms'],
  ['slice 64B delay=1ms delay=2ms', 'slice has delay twice, e.g. slice 64B delay=5ms'],
  ['slice 0.5B', '"0.5B" is not a whole number of bytes, e.g. slice 64B delay=5ms'],
  ['limit-data 0B', '"0B" is less than 1 byte, e.g. limit-data 10KB'],
  ['limit-data 10', '"10" needs a unit (B, KB, MB, GB, KiB, MiB or GiB), e.g. limit-data 10KB'],
];

describe('parseFault: malformed lines', () => {
  for (const [line, why] of INVALID) {
    test(JSON.stringify(line), () => {
      assert.throws(
        () => parseFault(line),
        (err: unknown) => {
          assert.ok(err instanceof InputError);
          assert.equal(err.message, `faults: cannot read ${JSON.stringify(line)}: ${why}`);
          return true;
        },
      );
    });
  }
});
