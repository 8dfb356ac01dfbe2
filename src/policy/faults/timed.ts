// reset and close differ only in how the client connection ends (RST or FIN), so they share
// one shape: a timer from the connection's open, or from the start of a call in calls=.
import type { TimedAction } from '../../proxy/types.js';
import { formatDuration, readDuration } from '../duration.js';
import { requireNamed, type FaultKind } from './fault.js';

export function timedFault<Name extends 'reset' | 'close'>(name: Name, action: TimedAction['kind'], example: string): FaultKind<Name, { afterMs: number }> {
  return {
    name,
    example,
    positional: null,
    options: ['after'],
    scoping: 'call',
    defaultDirection: null,
    parse: (args) => ({ afterMs: readDuration(requireNamed(args, name, 'after', 'duration', example), example) }),
    format: ({ afterMs }) => `after=${formatDuration(afterMs)}`,
    apply: ({ afterMs }, scope, conn) => {
      if (scope.calls) conn.callTimed.push({ calls: scope.calls, action: { kind: action, afterMs } });
      else conn.timed.push({ kind: action, afterMs });
    },
  };
}
