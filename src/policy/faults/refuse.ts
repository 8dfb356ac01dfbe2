// Accepts and resets at once, never connecting upstream: a service that is down.
import type { FaultKind } from './fault.js';

export const refuse: FaultKind<'refuse', Record<string, never>> = {
  name: 'refuse',
  example: 'refuse',
  positional: null,
  options: [],
  scoping: 'connection',
  defaultDirection: null,
  parse: () => ({}),
  format: () => '',
  apply: (_params, _scope, conn) => {
    conn.refuse = true;
  },
};
