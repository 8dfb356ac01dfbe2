// Accepts and reads, never forwards: the service never sees the request (or, downstream,
// the client never sees the answer), and the connection stays open.
import { lanesFor, type FaultKind } from './fault.js';

export const hang: FaultKind<'hang', Record<string, never>> = {
  name: 'hang',
  example: 'hang',
  positional: null,
  options: [],
  scoping: 'call',
  defaultDirection: 'upstream',
  parse: () => ({}),
  format: () => '',
  apply: (_params, scope, conn) => {
    for (const lane of lanesFor(scope, conn)) lane.hang.push(scope.calls);
  },
};
