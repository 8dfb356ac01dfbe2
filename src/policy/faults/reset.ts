// Resets (RST) the client connection after a time: what a crashed or killed service looks like.
import { timedFault } from './timed.js';

export const reset = timedFault('reset', 'reset', 'reset after=500ms');
