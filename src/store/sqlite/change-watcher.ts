/**
 * Tells listeners that the database may have changed, without polling for work
 * (DESIGN.md §2.9, §6 "Idle means idle"):
 *
 * - commits made through this connection are announced by the store itself ({@link notifyLocal});
 * - commits of OTHER connections (other processes, the heartbeat thread) are noticed through
 *   inotify on the database's directory: every commit writes frames to `<db>-wal`. An event
 *   only says "something wrote the WAL"; the store's `PRAGMA data_version` (which counts other
 *   connections' commits and only those) says whether a commit became visible. Because the
 *   frames are written just before the commit is published, one event is followed by a short
 *   burst of re-checks (next loop turn, 1, 2, 5, 25 ms), so a commit published a moment after its write is
 *   not missed;
 * - a slow fallback poll of `data_version` covers file systems without inotify. It is a read:
 *   it never takes the write lock.
 *
 * Listeners may be called spuriously and must treat a call as "look again", not as "there is
 * work". The watcher runs only while someone listens.
 */
import { closeSync, type FSWatcher, futimesSync, openSync, watch } from 'node:fs';
import { basename, dirname } from 'node:path';

export type ChangeListener = () => void;

/** Re-checks after a WAL write, in ms after the event (plus one on the next loop turn). */
const BURST_MS = [1, 2, 5, 25, 100] as const;

export class ChangeWatcher {
  readonly #file: string | null;
  readonly #dataVersion: () => number;
  readonly #fallbackMs: number;
  readonly #listeners = new Set<ChangeListener>();
  #watcher: FSWatcher | null = null;
  #fallback: NodeJS.Timeout | undefined;
  #burst: NodeJS.Timeout[] = [];
  #last = -1;
  #closed = false;
  /** The open `<db>-wake` file this store touches after its commits (null: none). */
  #bell: number | null = null;

  /**
   * @param file the database file (null for `:memory:`, which only hears local commits)
   * @param dataVersion reads `PRAGMA data_version` on the store's connection
   */
  constructor(file: string | null, dataVersion: () => number, fallbackMs = 250) {
    this.#file = file;
    this.#dataVersion = dataVersion;
    this.#fallbackMs = fallbackMs;
  }

  subscribe(listener: ChangeListener): () => void {
    this.#listeners.add(listener);
    if (this.#listeners.size === 1) this.#start();
    return () => {
      if (this.#listeners.delete(listener) && this.#listeners.size === 0) this.#stop();
    };
  }

  /** A commit through the store's own connection: tell this process, and ring for the others. */
  notifyLocal(): void {
    this.#ring();
    if (this.#listeners.size > 0) this.#fire();
  }

  close(): void {
    this.#closed = true;
    this.#listeners.clear();
    this.#stop();
    if (this.#bell !== null) {
      try {
        closeSync(this.#bell);
      } catch {
        // already closed
      }
      this.#bell = null;
    }
  }

  /** Touches `<db>-wake`: other processes' watchers hear it after this commit is visible. */
  #ring(): void {
    if (this.#file === null || this.#closed) return;
    try {
      this.#bell ??= openSync(`${this.#file}-wake`, 'a');
      const now = new Date();
      futimesSync(this.#bell, now, now);
    } catch {
      // a read-only directory: the others still notice the WAL write or the fallback check
    }
  }

  #start(): void {
    if (this.#closed || this.#file === null) return;
    this.#last = this.#read();
    const wal = `${basename(this.#file)}-wal`;
    const bell = `${basename(this.#file)}-wake`;
    try {
      this.#watcher = watch(dirname(this.#file), { persistent: false }, (_event, name) => {
        if (name === bell) this.#check();
        else if (name === null || name === wal) this.#onWrite();
      });
      this.#watcher.on('error', () => this.#unwatch());
    } catch {
      this.#watcher = null; // no inotify here: the fallback poll still notices changes
    }
    this.#fallback = setInterval(() => this.#check(), this.#fallbackMs);
    this.#fallback.unref();
  }

  #stop(): void {
    this.#unwatch();
    clearInterval(this.#fallback);
    this.#fallback = undefined;
    for (const timer of this.#burst) clearTimeout(timer);
    this.#burst = [];
  }

  #unwatch(): void {
    this.#watcher?.close();
    this.#watcher = null;
  }

  #onWrite(): void {
    this.#check();
    if (this.#burst.length > 0) return;
    // The frames are written a moment before the commit is published: look again right after
    // this turn of the event loop, then on a few short timers.
    setImmediate(() => this.#check());
    this.#burst = BURST_MS.map((ms, i) =>
      setTimeout(() => {
        this.#check();
        if (i === BURST_MS.length - 1) this.#burst = [];
      }, ms),
    );
    for (const timer of this.#burst) timer.unref();
  }

  #check(): void {
    if (this.#listeners.size === 0) return;
    const version = this.#read();
    if (version === this.#last) return;
    this.#last = version;
    this.#fire();
  }

  #read(): number {
    try {
      return this.#dataVersion();
    } catch {
      return this.#last; // closed or busy: the next check looks again
    }
  }

  #fire(): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener();
      } catch {
        // a listener's failure must not stop the others from hearing about the change
      }
    }
  }
}
