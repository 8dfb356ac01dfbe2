// Holds the FIN that follows the last byte: a peer that lingers before closing.
import { formatDuration, readDuration } from '../duration.js';
import { lanesFor, type FaultKind } from './fault.js';

export const slowClose: FaultKind<'slow-close', { ms: number }> = {
  name: 'slow-close',
  example: 'slow-close 2s',
  positional: 'a duration',
  options: [],
  scoping: 'connection',
  defaultDirection: 'downstream',
  parse: ({ value }) => ({ ms: readDuration(value, slowClose.example) }),
  format: ({ ms }) => formatDuration(ms),
  apply: ({ ms }, scope, conn) => {
    for (const lane of lanesFor(scope, conn)) lane.slowCloseMs += ms;
  },
};
