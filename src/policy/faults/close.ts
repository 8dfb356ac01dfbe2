// Closes the client connection cleanly (FIN) after a time: an idle timeout or a graceful restart.
import { timedFault } from './timed.js';

export const close = timedFault('close', 'close', 'close after=1s');
