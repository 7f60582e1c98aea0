export {
  Daemon,
  type DaemonOptions,
  type DaemonPhase,
  DaemonStartError,
  splitListen,
} from './daemon.ts';
export type { DaemonSettings } from './settings.ts';
