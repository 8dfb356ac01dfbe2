// The action's inputs, read from the runner (INPUT_* variables) into RawSettings.
import * as core from '@actions/core';
import type { RawSettings, SettingName } from '../settings.js';

export const INPUT_NAMES: readonly SettingName[] = [
  'target',
  'port',
  'listen-address',
  'delay',
  'delay-per',
  'direction',
  'faults',
  'seed',
  'max-wait',
  'baseline',
  'max-regression',
  'log-payload',
  'pcap',
  'name',
  'summary',
  'run',
];

export function readInputs(): RawSettings {
  const raw: RawSettings = {};
  for (const name of INPUT_NAMES) raw[name] = core.getInput(name);
  return raw;
}
