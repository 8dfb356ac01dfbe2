// Forwards in small pieces with a pause between them, so the reader sees messages split
// across many reads (Toxiproxy's slicer).
import { formatByteSize, formatDuration, readByteSize, readDuration } from '../duration.js';
import { lanesFor, type FaultKind } from './fault.js';

export const slice: FaultKind<'slice', { pieceBytes: number; delayMs: number }> = {
  name: 'slice',
  example: 'slice 64B delay=5ms',
  positional: 'a piece size',
  options: ['delay'],
  scoping: 'call',
  defaultDirection: 'downstream',
  parse: ({ value, named }) => ({
    pieceBytes: readByteSize(value, slice.example),
    delayMs: readDuration(named.get('delay') ?? '0', slice.example),
  }),
  format: ({ pieceBytes, delayMs }) => `${formatByteSize(pieceBytes)} delay=${formatDuration(delayMs)}`,
  apply: ({ pieceBytes, delayMs }, scope, conn) => {
    const pacing = { pieceBytes, pauseAfter: () => delayMs };
    for (const lane of lanesFor(scope, conn)) lane.pacers.push({ calls: scope.calls, pacing });
  },
};
