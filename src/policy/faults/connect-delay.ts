// Holds the upstream connect; the client is accepted but nothing flows until it is made.
import { formatDuration, readDuration } from '../duration.js';
import type { FaultKind } from './fault.js';

export const connectDelay: FaultKind<'connect-delay', { ms: number }> = {
  name: 'connect-delay',
  example: 'connect-delay 2s',
  positional: 'a duration',
  options: [],
  scoping: 'connection',
  defaultDirection: null,
  parse: ({ value }) => ({ ms: readDuration(value, connectDelay.example) }),
  format: ({ ms }) => formatDuration(ms),
  apply: ({ ms }, _scope, conn) => {
    conn.connectDelayMs += ms;
  },
};
