#!/usr/bin/env node
// The `slow-proxy` command (bundled to dist/cli/index.js). Everything but the exit lives in ./cli/.
import { main } from './cli/main.js';

void main(process.argv.slice(2)).then((code) => {
  // Exit once stdout has taken the report: the proxy's sockets are closed, but a straggler
  // (a slow upstream connect) must not keep a finished run alive.
  process.stdout.write('', () => process.exit(code));
});
