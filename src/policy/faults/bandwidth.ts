// Limits each direction of a connection to a rate, by writing small pieces with pauses.
import { formatRate, readRate } from '../duration.js';
import { lanesFor, type FaultKind } from './fault.js';

/** Pieces of about 50 ms of transfer: small enough to look smooth, large enough that timer slack stays a few percent. */
const PIECES_PER_SECOND = 20;
const MAX_PIECE_BYTES = 64 * 1024;

export const bandwidth: FaultKind<'bandwidth', { bytesPerSecond: number }> = {
  name: 'bandwidth',
  example: 'bandwidth 64KB/s',
  positional: 'a rate',
  options: [],
  scoping: 'call',
  defaultDirection: 'both',
  parse: ({ value }) => ({ bytesPerSecond: readRate(value, bandwidth.example) }),
  format: ({ bytesPerSecond }) => formatRate(bytesPerSecond),
  apply: ({ bytesPerSecond }, scope, conn) => {
    const pieceBytes = Math.min(MAX_PIECE_BYTES, Math.max(1, Math.round(bytesPerSecond / PIECES_PER_SECOND)));
    const pacing = { pieceBytes, pauseAfter: (n: number) => (n * 1000) / bytesPerSecond };
    for (const lane of lanesFor(scope, conn)) lane.pacers.push({ calls: scope.calls, pacing });
  },
};
