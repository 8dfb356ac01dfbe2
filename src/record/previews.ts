// Payload previews for the job summary, read back from the traffic log (they are already
// redacted there). Reads only the head of the log, so the post step stays quick.
import fs from 'node:fs';
import readline from 'node:readline';
import type { PayloadPreview } from '../render/report.js';

const MAX_SCAN_BYTES = 16 * 1024 * 1024;

export async function readPayloadPreviews(logFile: string, limit: number): Promise<PayloadPreview[]> {
  const previews: PayloadPreview[] = [];
  let stream: fs.ReadStream;
  try {
    stream = fs.createReadStream(logFile, { encoding: 'utf8', end: MAX_SCAN_BYTES });
  } catch {
    return previews;
  }
  stream.on('error', () => {});
  const lines = readline.createInterface({ input: stream, crlfDelay: Infinity });
  try {
    for await (const line of lines) {
      if (!line.includes('"preview"')) continue;
      try {
        const ev = JSON.parse(line) as { event?: string; conn?: number; call?: number | null; dir?: 'up' | 'down'; preview?: string };
        if (ev.event === 'data' && typeof ev.preview === 'string' && ev.conn !== undefined && ev.dir) {
          previews.push({ conn: ev.conn, call: ev.call ?? null, dir: ev.dir, text: ev.preview });
        }
      } catch {
        /* a torn last line of a killed daemon */
      }
      if (previews.length >= limit) break;
    }
  } catch {
    /* unreadable log: no previews */
  } finally {
    lines.close();
    stream.destroy();
  }
  return previews;
}
