// Where a CLI run writes: the files the user named, the rest in a fresh folder of the OS temp dir
// (named like the action's, so both are found the same way), never in the working directory.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SessionFiles } from '../session.js';
import { fileSafe, type Settings } from '../settings.js';
import type { FileFlags } from './args.js';

export function prepareFiles(settings: Settings, named: FileFlags): SessionFiles {
  let dir: string | null = null;
  const inDefaultDir = (file: string): string => {
    dir ??= fs.mkdtempSync(path.join(os.tmpdir(), `slow-proxy-${fileSafe(settings.name)}-`));
    return path.join(dir, file);
  };
  const files: SessionFiles = {
    statsFile: path.resolve(named.statsFile ?? inDefaultDir('stats.json')),
    logFile: path.resolve(named.logFile ?? inDefaultDir('traffic.jsonl')),
    pcapFile: settings.pcap ? path.resolve(named.pcapFile ?? inDefaultDir('traffic.pcap')) : null,
  };
  for (const file of [files.statsFile, files.logFile, files.pcapFile]) {
    if (file) fs.mkdirSync(path.dirname(file), { recursive: true });
  }
  return files;
}

/** `stats:  /tmp/...` lines, for the start and the end of a run. */
export function describeFiles(files: SessionFiles): string {
  const rows: [string, string | null][] = [
    ['stats', files.statsFile],
    ['traffic log', files.logFile],
    ['pcap', files.pcapFile],
  ];
  return rows
    .filter((row): row is [string, string] => row[1] !== null)
    .map(([what, file]) => `${`${what}:`.padEnd(13)}${file}`)
    .join('\n');
}
