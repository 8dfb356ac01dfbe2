// The README against the code it describes: the Inputs and Outputs tables against action.yml (names,
// order, defaults), the commands against package.json, the policy examples against the parsers, the
// CLI flags against the CLI's help, and the relative links against the files.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HELP } from '../src/cli/help.js';
import { parseDelay } from '../src/policy/delay.js';
import { FORMS } from '../src/policy/delay-forms.js';
import { parseFault } from '../src/policy/faults.js';
import { SETTING_NAMES } from '../src/settings.js';
import { parseActionYml, type ActionEntry } from './support/action-yml.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const read = (file: string) => fs.readFileSync(path.join(ROOT, file), 'utf8');
const README = read('README.md');
const ACTION_YML = read('action.yml');

function markdownTable(markdown: string, header: RegExp): string[][] {
  const lines = markdown.split(/\r?\n/);
  const start = lines.findIndex((line) => header.test(line));
  if (start === -1) return [];
  const rows: string[][] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(
      line
        .trim()
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((cell) => cell.trim()),
    );
  }
  return rows;
}

/** `` `name` `` -> `name`; anything else as written, so a malformed cell shows in the diff. */
function codeCell(cell: string): string {
  return /^`([^`]+)`$/.exec(cell)?.[1] ?? cell;
}

/** How action.yml shows an input's default in the README: `(required)`, `""` or the value in backticks. */
function defaultCell(entry: ActionEntry): string {
  if (entry.props.required === 'true') return '(required)';
  const value = entry.props.default ?? '';
  return value === '' ? '""' : `\`${value}\``;
}

/** Null when the two lists agree; otherwise every difference, one per line. */
function diff(what: string, fromActionYml: string[], fromReadme: string[]): string | null {
  const lines: string[] = [];
  const missing = fromActionYml.filter((row) => !fromReadme.includes(row));
  const extra = fromReadme.filter((row) => !fromActionYml.includes(row));
  for (const row of missing) lines.push(`  missing from the README: ${row}`);
  for (const row of extra) lines.push(`  in the README, not in action.yml: ${row}`);
  if (lines.length === 0) {
    for (let i = 0; i < fromActionYml.length; i += 1) {
      if (fromActionYml[i] !== fromReadme[i]) lines.push(`  row ${i + 1}: action.yml has ${fromActionYml[i]}, the README has ${fromReadme[i]}`);
    }
  }
  if (lines.length === 0) return null;
  return [
    `README.md's ${what} table is out of sync with action.yml:`,
    ...lines,
    `  action.yml order: ${fromActionYml.join(', ')}`,
    `  README order:     ${fromReadme.join(', ')}`,
  ].join('\n');
}

const INPUTS_HEADER = /^\|\s*Input\s*\|\s*Default\s*\|\s*Description\s*\|\s*$/;
const OUTPUTS_HEADER = /^\|\s*Output\s*\|\s*Description\s*\|\s*$/;

function inputsProblem(actionYml: string, readme: string): string | null {
  const expected = parseActionYml(actionYml).inputs.map((entry) => `${entry.name} = ${defaultCell(entry)}`);
  const actual = markdownTable(readme, INPUTS_HEADER).map((cells) => `${codeCell(cells[0] ?? '')} = ${cells[1] ?? '(no default column)'}`);
  return diff('Inputs', expected, actual);
}

function outputsProblem(actionYml: string, readme: string): string | null {
  const expected = parseActionYml(actionYml).outputs.map((entry) => entry.name);
  const actual = markdownTable(readme, OUTPUTS_HEADER).map((cells) => codeCell(cells[0] ?? ''));
  return diff('Outputs', expected, actual);
}

describe('README.md and action.yml', () => {
  test('action.yml reads as inputs and outputs with descriptions', () => {
    const { inputs, outputs } = parseActionYml(ACTION_YML);
    assert.ok(inputs.length >= 10, `only ${inputs.length} inputs read from action.yml`);
    assert.ok(outputs.length >= 5, `only ${outputs.length} outputs read from action.yml`);
    for (const entry of [...inputs, ...outputs]) assert.ok(entry.props.description, `${entry.name} has no description in action.yml`);
    assert.equal(inputs.find((entry) => entry.name === 'target')?.props.required, 'true');
    assert.equal(inputs.find((entry) => entry.name === 'max-regression')?.props.default, '20%');
  });

  test('the Inputs table has one row per input of action.yml, in its order, with its default', () => {
    const problem = inputsProblem(ACTION_YML, README);
    assert.equal(problem, null, problem ?? '');
  });

  test('action.yml runs the bundles on node24, with a post step that always runs', () => {
    assert.deepEqual(parseActionYml(ACTION_YML).runs, { using: 'node24', main: 'dist/main/index.js', post: 'dist/post/index.js', 'post-if': 'always()' });
    for (const entry of ['main', 'post', 'daemon', 'cli']) {
      assert.ok(fs.existsSync(path.join(ROOT, 'dist', entry, 'index.js')), `dist/${entry}/index.js is committed`);
    }
  });

  test('the action reads exactly the inputs action.yml declares (SETTING_NAMES)', () => {
    assert.deepEqual([...SETTING_NAMES], parseActionYml(ACTION_YML).inputs.map((input) => input.name));
  });

  test('the Outputs table has one row per output of action.yml, in its order', () => {
    const problem = outputsProblem(ACTION_YML, README);
    assert.equal(problem, null, problem ?? '');
  });

  test('the check notices a wrong default, a missing row and a swapped pair', () => {
    const wrongDefault = README.replace('| `max-regression` | `20%` |', '| `max-regression` | `25%` |');
    assert.notEqual(wrongDefault, README, 'the README has no max-regression row to alter');
    assert.match(inputsProblem(ACTION_YML, wrongDefault) ?? '', /max-regression = `20%`/);

    const missingRow = README.replace(/^\| `pcap-file` \|.*\n/m, '');
    assert.notEqual(missingRow, README, 'the README has no pcap-file row to remove');
    assert.match(outputsProblem(ACTION_YML, missingRow) ?? '', /missing from the README: pcap-file/);

    const portRow = /^\| `port` \| `0` \|.*\n/m.exec(README)?.[0] ?? '';
    const listenRow = /^\| `listen-address` \|.*\n/m.exec(README)?.[0] ?? '';
    assert.ok(portRow && listenRow, 'the README lacks the port or listen-address input row');
    const swapped = README.replace(portRow + listenRow, listenRow + portRow);
    assert.match(inputsProblem(ACTION_YML, swapped) ?? '', /row 2: action\.yml has port = `0`, the README has listen-address/);
  });
});

describe('README.md commands', () => {
  const scripts = (JSON.parse(read('package.json')) as { scripts?: Record<string, string> }).scripts ?? {};

  test('it gives "npm ci && npm start" to run and "npm test" to test, and package.json has both scripts', () => {
    assert.ok(README.includes('npm ci && npm start'), 'README.md does not say `npm ci && npm start`');
    assert.ok(/(^|\n)npm test(\s|$)/.test(README), 'README.md has no `npm test` command line');
    assert.ok(scripts.start, 'package.json has no start script');
    assert.ok(scripts.test, 'package.json has no test script');
  });

  test('every `npm run X` it mentions is a script of package.json', () => {
    const named = [...README.matchAll(/npm run ([\w:-]+)/g)].map((m) => m[1]);
    assert.ok(named.length > 0, 'README.md mentions no npm run script');
    for (const name of named) assert.ok(scripts[name], `README.md mentions npm run ${name}, which package.json does not have`);
  });

  test('every CLI flag it mentions is in the CLI help', () => {
    const flags = new Set([...README.matchAll(/(?<![\w-])--([a-z][a-z-]*)/g)].map((m) => m[1]));
    // Flags of other programs in the README's snippets.
    for (const other of ['health-cmd', 'health-interval', 'health-timeout', 'health-retries', 'data']) flags.delete(other);
    assert.ok(flags.size > 5, `only ${flags.size} CLI flags found in README.md`);
    for (const flag of flags) assert.ok(HELP.includes(`--${flag}`), `README.md mentions --${flag}, which slow-proxy --help does not list`);
  });

  test('its benchmark lines, written by npm run bench between markers, are there', () => {
    const block = /<!-- bench:start[^>]*-->([\s\S]*?)<!-- bench:end -->/.exec(README)?.[1] ?? '';
    assert.ok(/^- \*\*Throughput\*\*/m.test(block), 'README.md\'s bench block is missing or empty: run npm run bench');
  });

  test('its relative links point at files that exist', () => {
    const links = [...README.matchAll(/\]\((?!https?:|#)([^)\s]+)\)/g)].map((m) => m[1]);
    assert.ok(links.includes('docs/benchmarks.md'), 'README.md does not link docs/benchmarks.md');
    for (const link of links) assert.ok(fs.existsSync(path.join(ROOT, link)), `README.md links ${link}, which does not exist`);
  });
});

describe('README.md policy examples', () => {
  test('every delay example parses, and every delay form has one', () => {
    const rows = markdownTable(README, /^\|\s*`delay` form\s*\|\s*Example\s*\|/);
    assert.ok(rows.length >= 8, `only ${rows.length} rows in the delay table`);
    const examples = rows.map((cells) => codeCell(cells[1] ?? ''));
    for (const example of examples) assert.doesNotThrow(() => parseDelay(example), `delay example ${example} does not parse`);
    for (const form of Object.keys(FORMS)) {
      assert.ok(examples.some((example) => example.startsWith(`${form}(`)), `the delay table has no example of ${form}(...)`);
    }
  });

  test('every fault example parses as the fault its row names', () => {
    const rows = markdownTable(README, /^\|\s*Fault\s*\|\s*Example\s*\|/);
    assert.ok(rows.length >= 9, `only ${rows.length} rows in the fault table`);
    for (const cells of rows) {
      const name = codeCell(cells[0] ?? '');
      const example = codeCell(cells[1] ?? '');
      assert.equal(parseFault(example).name, name, `fault example ${example} is not a ${name}`);
    }
  });
});
