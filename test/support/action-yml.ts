// action.yml as the tests see it, read with the `yaml` library rather than by hand.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');

/** One input or output; every value as the string the runner would see. */
export interface ActionEntry {
  name: string;
  props: Record<string, string>;
}

export interface ActionYml {
  inputs: ActionEntry[];
  outputs: ActionEntry[];
  runs: Record<string, string>;
}

function entries(block: unknown): ActionEntry[] {
  return Object.entries((block ?? {}) as Record<string, Record<string, unknown>>).map(([name, props]) => ({
    name,
    props: Object.fromEntries(Object.entries(props ?? {}).map(([key, value]) => [key, String(value)])),
  }));
}

export function parseActionYml(text: string): ActionYml {
  const doc = parse(text) as { inputs?: unknown; outputs?: unknown; runs?: Record<string, unknown> };
  return {
    inputs: entries(doc.inputs),
    outputs: entries(doc.outputs),
    runs: Object.fromEntries(Object.entries(doc.runs ?? {}).map(([k, v]) => [k, String(v)])),
  };
}

export function readActionYml(): ActionYml {
  return parseActionYml(readFileSync(join(ROOT, 'action.yml'), 'utf8'));
}
