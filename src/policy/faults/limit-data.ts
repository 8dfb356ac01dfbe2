// Closes the connection cleanly after a number of bytes: a truncated response.
import { formatByteSize, readByteSize } from '../duration.js';
import { lanesFor, type FaultKind } from './fault.js';

export const limitData: FaultKind<'limit-data', { bytes: number }> = {
  name: 'limit-data',
  example: 'limit-data 10KB',
  positional: 'a size',
  options: [],
  scoping: 'connection',
  defaultDirection: 'downstream',
  parse: ({ value }) => ({ bytes: readByteSize(value, limitData.example) }),
  format: ({ bytes }) => formatByteSize(bytes),
  apply: ({ bytes }, scope, conn) => {
    for (const lane of lanesFor(scope, conn)) lane.limitBytes = Math.min(lane.limitBytes ?? Infinity, bytes);
  },
};
