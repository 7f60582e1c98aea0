/**
 * The daemon's security watchers: policy files are re-read when they change (validate-then-
 * swap: an invalid edit keeps the previous version and is logged), and protected files are
 * hashed at start and on a schedule (host integrity): a change raises a `security.decision`
 * event in the `system` session and a quarantine record.
 */
import { type FSWatcher, watch } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';

import type { Logger } from 'pino';

import { coerceError } from '../core/index.ts';
import type { Kernel } from '../kernel/index.ts';
import { HostIntegrity, type IntegrityChange, type Security } from '../security/index.ts';
import type { DaemonSettings } from './settings.ts';

export interface SecurityWatchers {
  /** Resolves once the integrity baseline is taken. */
  readonly ready: Promise<void>;
  stop(): void;
}

/** Policy edits land in bursts (editors write twice): reload once they settle. */
const RELOAD_DEBOUNCE_MS = 200;

export function startSecurityWatchers(parts: {
  kernel: Kernel;
  security: Security;
  settings: DaemonSettings;
  logger: Logger;
}): SecurityWatchers {
  const { kernel, security, settings, logger } = parts;
  const watchers: FSWatcher[] = [];
  let timer: NodeJS.Timeout | null = null;
  const reload = () => {
    timer = null;
    security.policy.reload().then(
      (outcome) => {
        if (outcome.changed)
          logger.info({ version: outcome.version, previous: outcome.previous }, 'policy reloaded');
      },
      (error: unknown) => {
        const failure = coerceError(error);
        logger.error(
          { code: failure.code, err: failure.message, version: security.policy.version },
          'policy reload refused; the previous version stays active',
        );
      },
    );
  };
  const onChange = (file: string | null) => {
    if (file !== null && !/^policy\.ya?ml$|\.cedar$|\.ya?ml$/.test(file)) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(reload, RELOAD_DEBOUNCE_MS);
  };
  const policiesDir = join(settings.home, 'policies');
  let watchingPolicies = false;
  const watchDir = (dir: string, onEvent: (file: string | null) => void): boolean => {
    try {
      const w = watch(dir, { persistent: false }, (_event, file) => onEvent(file ?? null));
      w.on('error', () => undefined);
      watchers.push(w);
      return true;
    } catch {
      return false; // No such directory (yet).
    }
  };
  let stopped = false;
  const watchPolicies = () => {
    if (!watchingPolicies && !stopped)
      watchingPolicies = watchDir(policiesDir, () => onChange('x.cedar'));
  };
  if (settings.security.watch_policy) {
    watchDir(settings.home, (file) => {
      // policies/ made after the start: watch it from now on, and read what it holds.
      if (file === 'policies') {
        watchPolicies();
        return onChange('x.cedar');
      }
      onChange(file);
    });
    watchPolicies();
  }

  const files = settings.security.integrity.files.map((f) =>
    isAbsolute(f) ? f : resolve(settings.home, f),
  );
  const integrity = files.length
    ? new HostIntegrity({
        files,
        intervalMs: settings.security.integrity.interval,
        onChange: (change) => {
          void report(kernel, security, change).catch((error: unknown) =>
            logger.error(
              { err: coerceError(error).message },
              'could not record an integrity change',
            ),
          );
          logger.warn(
            { path: change.path, before: change.before, after: change.after },
            'protected file changed',
          );
        },
      })
    : null;
  const ready = integrity
    ? integrity.baseline().then(() => {
        integrity.start();
      })
    : Promise.resolve();
  return {
    ready,
    stop: () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      for (const w of watchers) w.close();
      integrity?.stop();
    },
  };
}

async function report(kernel: Kernel, security: Security, change: IntegrityChange): Promise<void> {
  const system = await kernel.sessions.system();
  const trace = kernel.ids.next('tr');
  const reasons = [
    change.after === null
      ? `${change.path} disappeared`
      : change.before === null
        ? `${change.path} appeared`
        : `${change.path} changed`,
  ];
  const id = await security.quarantine({
    kind: 'integrity',
    principal: 'host',
    action: 'file.change',
    resource: `path:${change.path}`,
    reasons,
    context: { before: change.before, after: change.after },
    process_id: null,
    session_id: system.id,
    trace_id: trace,
  });
  await kernel.store.commit([
    {
      op: 'event',
      event: {
        session_id: system.id,
        type: 'security.decision',
        trace_id: trace,
        data: {
          kind: 'integrity',
          path: change.path,
          before: change.before,
          after: change.after,
          reasons,
          quarantine_id: id,
        },
      },
    },
  ]);
}
