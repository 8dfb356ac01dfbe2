// What main hands the daemon, and what the daemon hands back: the two files between them.
import type { SessionFiles } from '../session.js';
import type { RawSettings } from '../settings.js';

export interface DaemonConfig {
  /** The inputs as given, with the seed filled in so the daemon draws what main reported. */
  settings: RawSettings;
  files: SessionFiles;
  /** Where the daemon writes its DaemonStatus once it listens (or fails to). */
  statusFile: string;
}

export type DaemonStatus =
  | { ok: true; pid: number; host: string; port: number; controlUrl: string | null; controlToken: string | null }
  /** `reported`: the message already names the input at fault (a taken port), so it is shown as it is. */
  | { ok: false; error: string; reported: boolean };
