import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatByteSize, formatDuration, formatRate, parseByteSize, parseDuration, parseRate } from '../src/policy/duration.js';

describe('durations', () => {
  test('read ms, s and m', () => {
    const cases: Array<[string, number]> = [
      ['250ms', 250],
      ['1.5s', 1500],
      ['2m', 120_000],
      ['0', 0],
      ['0s', 0],
      [' 1s ', 1000],
      ['0.5ms', 0.5],
      ['1.005s', 1005],
      ['1440m', 86_400_000],
    ];
    for (const [text, ms] of cases) assert.equal(parseDuration('timeout', text), ms, text);
  });

  test('reject what is not a duration, with a one-line message', () => {
    const cases: Array<[string, string]> = [
      ['', 'a duration is missing'],
      ['5', '"5" needs a unit (ms, s or m)'],
      ['5h', '"5h" has an unknown unit "h" (use ms, s or m)'],
      ['-1s', '"-1s" is negative; durations start at 0'],
      ['1e3ms', '"1e3ms" is not a duration (a number with ms, s or m)'],
      ['.5s', '".5s" is not a duration (a number with ms, s or m)'],
      ['1441m', '"1441m" is longer than 24 hours'],
    ];
    for (const [text, why] of cases) {
      assert.throws(() => parseDuration('timeout', text), { name: 'InputError', message: `timeout: cannot read ${JSON.stringify(text)}: ${why}, e.g. 250ms` });
    }
  });

  test('format in the shortest exact form, which reads back the same', () => {
    const cases: Array<[number, string]> = [
      [0, '0ms'],
      [250, '250ms'],
      [1000, '1s'],
      [1500, '1.5s'],
      [1005, '1.005s'],
      [60_000, '1m'],
      [120_000, '2m'],
      [90_000, '90s'],
      [0.5, '0.5ms'],
      [1000.5, '1000.5ms'],
    ];
    for (const [ms, text] of cases) {
      assert.equal(formatDuration(ms), text);
      assert.equal(parseDuration('d', text), ms);
    }
  });
});

describe('byte sizes and rates', () => {
  test('KB is 1000 bytes, KiB is 1024', () => {
    const cases: Array<[string, number]> = [
      ['64B', 64],
      ['10KB', 10_000],
      ['1MB', 1_000_000],
      ['1GB', 1_000_000_000],
      ['64KiB', 65_536],
      ['1.5KiB', 1536],
      ['2MiB', 2 * 1024 * 1024],
      ['1GiB', 1024 ** 3],
      ['10kb', 10_000],
      ['1.5KB', 1500],
    ];
    for (const [text, bytes] of cases) assert.equal(parseByteSize('size', text), bytes, text);
  });

  test('reject sizes that are not a whole, positive number of bytes', () => {
    const cases: Array<[string, string]> = [
      ['0B', '"0B" is less than 1 byte'],
      ['1.5B', '"1.5B" is not a whole number of bytes'],
      ['10', '"10" needs a unit (B, KB, MB, GB, KiB, MiB or GiB)'],
      ['10XB', '"10XB" has an unknown unit "XB" (use B, KB, MB, GB, KiB, MiB or GiB)'],
      ['-1KB', '"-1KB" is negative'],
      ['lots', '"lots" is not a size (a number with B, KB, MB, GB, KiB, MiB or GiB)'],
    ];
    for (const [text, why] of cases) {
      assert.throws(() => parseByteSize('size', text), { message: `size: cannot read ${JSON.stringify(text)}: ${why}, e.g. 64KiB` });
    }
  });

  test('format sizes in the largest exact unit', () => {
    const cases: Array<[number, string]> = [
      [64, '64B'],
      [10_000, '10KB'],
      [65_536, '64KiB'],
      [1536, '1.5KiB'],
      [1_000_000, '1MB'],
      [1_048_576, '1MiB'],
      [1500, '1.5KB'],
      [1001, '1.001KB'],
      [1023, '1.023KB'],
      [1_000_001, '1000.001KB'],
      [7, '7B'],
      [64_000, '64KB'],
      [1_024_000, '1000KiB'],
    ];
    for (const [bytes, text] of cases) {
      assert.equal(formatByteSize(bytes), text);
      assert.equal(parseByteSize('size', text), bytes);
    }
  });

  test('rates are sizes per second', () => {
    assert.equal(parseRate('bandwidth', '64KB/s'), 64_000);
    assert.equal(parseRate('bandwidth', '1MiB/s'), 1024 * 1024);
    assert.equal(formatRate(64_000), '64KB/s');
    assert.throws(() => parseRate('bandwidth', '64KB'), { message: 'bandwidth: cannot read "64KB": "64KB" needs "/s" (per second), e.g. 64KB/s' });
    assert.throws(() => parseRate('bandwidth', '64KB/m'), { message: 'bandwidth: cannot read "64KB/m": "64KB/m" must be per second (/s), e.g. 64KB/s' });
    assert.throws(() => parseRate('bandwidth', '0KB/s'), { message: 'bandwidth: cannot read "0KB/s": "0KB" is less than 1 byte, e.g. 64KB/s' });
  });
});
