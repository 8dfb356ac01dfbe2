// The CLI's dispatch and its one rule for errors: a bad command line or a bad value is one line
// on stderr and exit 2, anything else one line and exit 1; never a stack trace.
import packageJson from '../../package.json' with { type: 'json' };
import { InputError, messageOf } from '../errors.js';
import { parseCommandLine, UsageError } from './args.js';
import { runCtl } from './ctl.js';
import { runDemo } from './demo.js';
import { HELP } from './help.js';
import { runProxy } from './run.js';

/** Runs the command; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  try {
    const command = parseCommandLine(argv);
    switch (command.kind) {
      case 'help':
        process.stdout.write(HELP);
        return 0;
      case 'version':
        process.stdout.write(`${packageJson.version}\n`);
        return 0;
      case 'demo':
        return await runDemo();
      case 'ctl':
        return await runCtl(command.args);
      case 'run':
        return await runProxy(command.args);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`slow-proxy: ${err.message}; see slow-proxy --help\n`);
      return 2;
    }
    if (err instanceof InputError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    process.stderr.write(`slow-proxy: ${messageOf(err)}\n`);
    return 1;
  }
}
