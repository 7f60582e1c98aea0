/**
 * Host integrity: the sha256 of each protected file (config, policy, secrets, the Warden
 * program itself…), taken at start and compared on a schedule. A change (edited, deleted,
 * created) is reported once through `onChange`, which the daemon turns into a
 * `security.decision` event; the new hash then becomes the reference, so the next check reports
 * only what changed after it.
 *
 * States of one path: a hash (a readable regular file) or `null` (missing, unreadable, or not a
 * regular file: a directory, a socket). Symbolic links are followed: what matters is the
 * content Warden would read. A file larger than `maxFileBytes` is hashed over its first
 * `maxFileBytes` bytes and its size, so an edit past that point that keeps the size is not seen.
 *
 * Checks never overlap: `check()` while another check runs waits for it and then runs its own.
 * The timer (a chained, unref'd `setTimeout`, so it never keeps the process alive) starts after
 * the baseline and runs every `intervalMs`. A check that fails for another reason (EIO, EMFILE)
 * goes to `onError`, by default a process warning: it is never dropped silently.
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { isAbsolute } from 'node:path';

import { z } from 'zod';

import { checkParams, type Clock, isWardenError, systemClock, WardenError } from '../core/index.ts';

/** One changed path: hashes are sha256 hex, or null for "no readable regular file". */
export interface IntegrityChange {
  readonly path: string;
  readonly before: string | null;
  readonly after: string | null;
}

export interface HostIntegrityOptions {
  /** Absolute paths to watch; a path that does not exist yet is watched as missing. */
  readonly files: readonly string[];
  /** Time between scheduled checks. @default 300000 (5 min) */
  readonly intervalMs?: number;
  /** Called once per change, in `files` order. An exception it throws goes to `onError`. */
  readonly onChange: (change: IntegrityChange) => void;
  /** Called when a scheduled check fails. @default a process warning */
  readonly onError?: (error: WardenError) => void;
  /** Bytes hashed per file at most (see the module comment). @default 67108864 (64 MiB) */
  readonly maxFileBytes?: number;
  /** Time of the last check ({@link HostIntegrity.lastCheckAt}). @default systemClock */
  readonly clock?: Clock;
}

const optionsSchema = z.object({
  files: z
    .array(z.string().refine(isAbsolute, 'expected an absolute path'))
    .min(1, 'expected at least one path'),
  intervalMs: z.number().int().min(10).max(86_400_000).optional(),
  onChange: z.custom<(change: IntegrityChange) => void>((v) => typeof v === 'function', {
    message: 'expected a function',
  }),
  onError: z
    .custom<(error: WardenError) => void>((v) => typeof v === 'function', {
      message: 'expected a function',
    })
    .optional(),
  maxFileBytes: z.number().int().min(1).optional(),
  clock: z.custom<Clock>((v) => typeof (v as Clock | null)?.now === 'function').optional(),
});

/** Errors that mean "no readable regular file here" rather than a failed check. */
const ABSENT = new Set(['ENOENT', 'ENOTDIR', 'EACCES', 'EPERM', 'EISDIR', 'ELOOP', 'ENXIO']);

/**
 * The sha256 hex of the regular file at `path` (streamed, at most `maxBytes` bytes; a longer
 * file's size is hashed too), or null when there is no readable regular file there.
 */
export async function hashFile(path: string, maxBytes: number): Promise<string | null> {
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (error) {
    if (ABSENT.has((error as NodeJS.ErrnoException).code ?? '')) return null;
    throw error;
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) return null;
    const hash = createHash('sha256');
    const buffer = Buffer.alloc(Math.min(1 << 16, maxBytes));
    let total = 0;
    while (total < maxBytes) {
      const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, maxBytes - total));
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      total += bytesRead;
    }
    if (total >= maxBytes && stat.size > maxBytes) hash.update(`\0size:${stat.size}`);
    return hash.digest('hex');
  } catch (error) {
    if (ABSENT.has((error as NodeJS.ErrnoException).code ?? '')) return null;
    throw error;
  } finally {
    await handle.close();
  }
}

/** Hashes protected files at start and on a schedule; reports each change once. */
export class HostIntegrity {
  readonly #files: readonly string[];
  readonly #intervalMs: number;
  readonly #onChange: (change: IntegrityChange) => void;
  readonly #onError: (error: WardenError) => void;
  readonly #maxFileBytes: number;
  readonly #clock: Clock;
  #hashes: Map<string, string | null> | null = null;
  #running: Promise<unknown> = Promise.resolve();
  #timer: NodeJS.Timeout | null = null;
  #started = false;
  /** Bumped by start() and stop(): a callback of an older schedule does nothing. */
  #generation = 0;
  #lastCheckAt: number | null = null;

  /** @throws INVALID_PARAMS naming the bad option. */
  constructor(options: HostIntegrityOptions) {
    const o = checkParams('new HostIntegrity', optionsSchema, options);
    this.#files = [...new Set(o.files)];
    this.#intervalMs = o.intervalMs ?? 300_000;
    this.#onChange = o.onChange;
    this.#onError =
      o.onError ??
      ((error) => process.emitWarning(error.message, { code: `WARDEN_${error.code}` }));
    this.#maxFileBytes = o.maxFileBytes ?? 64 * 1024 * 1024;
    this.#clock = o.clock ?? systemClock;
  }

  /** The paths watched, without duplicates. */
  get files(): readonly string[] {
    return this.#files;
  }

  /** When the last baseline or check finished (ms since the epoch), or null before the first. */
  get lastCheckAt(): number | null {
    return this.#lastCheckAt;
  }

  /** Hashes every file now and makes that the reference. Reports nothing. */
  baseline(): Promise<Record<string, string | null>> {
    return this.#serial(async () => {
      this.#hashes = await this.#hashAll();
      this.#lastCheckAt = this.#clock.now();
      return Object.fromEntries(this.#hashes);
    });
  }

  /**
   * Hashes every file, calls `onChange` for each one that differs from the reference, adopts
   * the new hashes and returns the changes.
   * @throws INVALID_STATE before {@link baseline}; INTERNAL when a file cannot be read for a
   *   reason other than being absent (EIO…), with nothing adopted.
   */
  check(): Promise<IntegrityChange[]> {
    return this.#serial(async () => {
      const reference = this.#hashes;
      if (reference === null)
        throw new WardenError(
          'INVALID_STATE',
          'HostIntegrity.check: no baseline yet; call baseline() (or start()) first',
        );
      const now = await this.#hashAll();
      const changes: IntegrityChange[] = [];
      for (const [path, after] of now) {
        const before = reference.get(path) ?? null;
        if (before !== after) changes.push({ path, before, after });
      }
      this.#hashes = now; // adopted before reporting: a throwing listener cannot cause a repeat
      this.#lastCheckAt = this.#clock.now();
      let listenerError: unknown;
      for (const change of changes)
        try {
          this.#onChange(change);
        } catch (error) {
          listenerError ??= error;
        }
      if (listenerError !== undefined)
        this.#onError(
          new WardenError('INTERNAL', 'HostIntegrity: the onChange listener threw', {
            cause: listenerError,
          }),
        );
      return changes;
    });
  }

  /** Takes the baseline (unless taken) and checks every `intervalMs` until {@link stop}. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    const generation = ++this.#generation;
    const first = this.#hashes === null ? this.baseline() : Promise.resolve();
    this.#after(first, generation);
  }

  /** Stops the schedule. A check already running finishes (and reports what it finds). */
  stop(): void {
    this.#started = false;
    this.#generation++;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** Schedules the next check when `run` settles, unless stopped or restarted meanwhile. */
  #after(run: Promise<unknown>, generation: number): void {
    const next = (): void => {
      if (generation !== this.#generation) return;
      this.#timer = setTimeout(() => {
        this.#timer = null;
        this.#after(this.#hashes === null ? this.baseline() : this.check(), generation);
      }, this.#intervalMs);
      this.#timer.unref();
    };
    run.then(next, (error: unknown) => {
      this.#report(error);
      next();
    });
  }

  #report(error: unknown): void {
    this.#onError(
      isWardenError(error)
        ? error
        : new WardenError('INTERNAL', `HostIntegrity: a check failed: ${String(error)}`, {
            cause: error,
          }),
    );
  }

  async #hashAll(): Promise<Map<string, string | null>> {
    const out = new Map<string, string | null>();
    for (const path of this.#files) {
      try {
        out.set(path, await hashFile(path, this.#maxFileBytes));
      } catch (error) {
        throw new WardenError(
          'INTERNAL',
          `HostIntegrity: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
          { cause: error, details: { path } },
        );
      }
    }
    return out;
  }

  /** Runs `task` after every earlier one has settled. */
  #serial<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#running.then(task, task);
    this.#running = result.catch(() => undefined);
    return result;
  }
}
