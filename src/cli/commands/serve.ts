/**
 * `warden serve`: runs the daemon in the foreground, logging JSON lines to stdout. Start order
 * and shutdown are the Daemon's; this command adds the process around it: config (flags, env,
 * file), one daemon per home, the discovery file clients find it by, signals and reloads.
 */
import { watch } from 'node:fs';
import { basename, dirname } from 'node:path';

import type { Logger } from 'pino';

import { coerceError, type WardenError } from '../../core/index.ts';
import { Daemon, type DaemonSettings, DaemonStartError } from '../../daemon/index.ts';
import { createLogger } from '../../protocols/http/index.ts';
import { ensureAdminToken } from '../../security/index.ts';
import { redactUrl } from '../../store/index.ts';
import {
  type ConfigOverrides,
  loadConfig,
  type ResolvedConfig,
  retentionOptionsOf,
} from '../config.ts';
import { storeTargetOf } from '../context.ts';
import { acquireDaemonLock, removeDaemonFile, writeDaemonFile } from '../daemon-file.ts';
import { EXIT, exitCodeFor } from '../exit-codes.ts';
import type { GlobalOptions } from '../global-options.ts';
import { VERSION } from '../version.ts';

export interface ServeOptions extends GlobalOptions {
  readonly listen?: string;
  readonly logLevel?: string;
}

export function daemonSettings(config: ResolvedConfig, options: ServeOptions): DaemonSettings {
  return {
    home: config.home,
    databasePath: config.databasePath,
    store: storeTargetOf(config),
    durability: config.durability,
    agentLane: config.agent_lane,
    model: config.model,
    worker: config.worker,
    retention: config.retention.enabled ? retentionOptionsOf(config.retention) : null,
    server: {
      ...config.server,
      ...(options.listen ? { listen: options.listen } : {}),
      ...(options.logLevel
        ? { log_level: options.logLevel as DaemonSettings['server']['log_level'] }
        : {}),
    },
    lanes: config.lanes,
    channels: config.channels,
    tools: config.tools,
    security: config.security,
  };
}

/** Runs until SIGINT/SIGTERM; the exit code says how it ended (a failed start: its reason). */
export async function serveCommand(options: ServeOptions): Promise<number> {
  const overrides: ConfigOverrides = {
    ...(options.home ? { home: options.home } : {}),
    ...(options.db ? { db: options.db } : {}),
    ...(options.durability ? { durability: options.durability } : {}),
  };
  let logger: Logger = createLogger({ level: 'info' });
  let config: ResolvedConfig;
  let settings: DaemonSettings;
  try {
    config = loadConfig(overrides);
    settings = daemonSettings(config, options);
  } catch (error) {
    return fatal(logger, 'config', coerceError(error));
  }
  logger = createLogger({ level: settings.server.log_level, base: { pid: process.pid } });
  let release: () => void;
  let adminToken: string;
  try {
    const lock = acquireDaemonLock(config.home);
    release = () => lock.release();
    const admin = ensureAdminToken(config.home);
    adminToken = admin.token;
    if (admin.insecure)
      logger.warn(
        { file: admin.file, mode: admin.mode.toString(8) },
        `the admin token file is readable by others; fix it with: chmod 600 ${admin.file}`,
      );
  } catch (error) {
    return fatal(logger, 'config', coerceError(error));
  }
  let daemon: Daemon;
  try {
    daemon = await Daemon.start({
      settings,
      logger,
      version: VERSION,
      adminToken: () => adminToken,
    });
  } catch (error) {
    release();
    if (error instanceof DaemonStartError) return fatal(logger, error.phase, error.error);
    return fatal(logger, 'workers', coerceError(error));
  }
  const acpUrl = `${daemon.url.replace(/^http/, 'ws')}/acp`;
  writeDaemonFile(config.home, {
    pid: process.pid,
    url: acpUrl,
    started_at: Date.now(),
    version: VERSION,
    database: config.storeUrl ? redactUrl(config.storeUrl) : config.databasePath,
  });

  const reload = async (why: string) => {
    try {
      const next = daemonSettings(loadConfig(overrides), options);
      adminToken = ensureAdminToken(config.home).token;
      const result = await daemon.reload(next);
      logger.info({ reason: why, ...result }, 'configuration reloaded');
      if (result.needsRestart.length > 0)
        logger.warn({ keys: result.needsRestart }, 'these keys change only on restart');
    } catch (error) {
      const e = coerceError(error);
      logger.error(
        { reason: why, code: e.code, err: e.message },
        'configuration reload refused; the previous configuration stays in force',
      );
    }
  };
  // The file watch sees config.yaml written by an editor (often as rename-over-the-old-file).
  let debounce: NodeJS.Timeout | undefined;
  const watcher = watch(dirname(config.configFile), (_event, name) => {
    if (name !== basename(config.configFile)) return;
    clearTimeout(debounce);
    debounce = setTimeout(() => void reload('file changed'), 200);
  });
  watcher.on('error', () => watcher.close());

  return new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      process.off('SIGINT', onInt).off('SIGTERM', onTerm).off('SIGHUP', onHup);
      watcher.close();
      clearTimeout(debounce);
      daemon
        .stop(signal)
        .catch((error: unknown) => logger.error({ err: coerceError(error).message }, 'stop failed'))
        .finally(() => {
          removeDaemonFile(config.home, process.pid);
          release();
          logger.flush();
          resolve(EXIT.OK);
        });
    };
    const onInt = () => stop('SIGINT');
    const onTerm = () => stop('SIGTERM');
    const onHup = () => void reload('SIGHUP');
    process.on('SIGINT', onInt).on('SIGTERM', onTerm).on('SIGHUP', onHup);
  });
}

/** One JSON log line naming the phase and the reason code, then the code's exit status. */
function fatal(logger: Logger, phase: string, error: WardenError): number {
  logger.fatal(
    {
      phase,
      code: error.code,
      err: error.message,
      ...(error.details ? { details: error.details } : {}),
    },
    `start failed in phase ${phase}: ${error.message}`,
  );
  logger.flush();
  return exitCodeFor(error.code) || EXIT.ERROR;
}
