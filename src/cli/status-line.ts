// The live one-line status under the ready line, redrawn in place a few times a second. Only on a
// terminal: redirected to a file or a pipe, the carriage returns would be noise.
import type { Stats } from '../record/stats.js';
import { formatMs } from '../render/format.js';

const REFRESH_MS = 250;
const CLEAR_LINE = '\r\x1b[2K';

export function statusText(stats: Stats, paused: boolean): string {
  const seconds = Math.floor(stats.durationMs / 1000);
  return [
    `up ${seconds === 0 ? '0 s' : formatMs(seconds * 1000)}`,
    `calls ${stats.calls.total + stats.calls.pending}`,
    `waiting now ${stats.calls.pending}`,
    `answered ${stats.calls.answered}`,
    `gave up ${stats.calls.gaveUp}`,
    `connections open ${stats.connections.open}`,
    ...(paused ? ['PAUSED'] : []),
  ].join('  ');
}

export class StatusLine {
  private timer: NodeJS.Timeout | null = null;
  private shown = false;
  private readonly enabled: boolean;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly text: () => string,
  ) {
    this.enabled = out.isTTY === true;
  }

  start(): void {
    if (!this.enabled || this.timer) return;
    this.timer = setInterval(() => this.draw(), REFRESH_MS);
    this.timer.unref();
    this.draw();
  }

  /** Takes the line away so other output starts at column 0; the next refresh draws it again. */
  clear(): void {
    if (!this.shown) return;
    this.out.write(CLEAR_LINE);
    this.shown = false;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.clear();
  }

  private draw(): void {
    // One column short of the width, so the line never wraps and \r always returns to its start.
    const width = Math.max(10, (this.out.columns || 80) - 1);
    this.out.write(CLEAR_LINE + this.text().slice(0, width));
    this.shown = true;
  }
}
