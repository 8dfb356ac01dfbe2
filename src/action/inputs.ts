// The action's inputs, read from the runner (INPUT_* variables) into RawSettings.
import * as core from '@actions/core';
import { SETTING_NAMES, type RawSettings } from '../settings.js';

export function readInputs(): RawSettings {
  const raw: RawSettings = {};
  for (const name of SETTING_NAMES) raw[name] = core.getInput(name);
  return raw;
}
