/**
 * Where the daemon's time goes: a V8 `.cpuprofile` (written by `node --cpu-prof`) reduced to
 * self time per function and per place (a Warden module, a dependency, Node's internals), and
 * inclusive time of the frames the report asks about. Time comes from the profile's samples
 * and their `timeDeltas`, so idle time shows as V8's `(idle)` node and is left out of shares.
 */
import { readFileSync } from 'node:fs';

import { repoDir } from '../shared/machine.ts';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}
interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: number[];
}
interface CpuProfile {
  readonly nodes: ProfileNode[];
  readonly samples: number[];
  readonly timeDeltas: number[];
  /** µs on the monotonic clock (`process.hrtime`'s, in µs). */
  readonly startTime: number;
}

export interface ProfileRow {
  readonly name: string;
  readonly ms: number;
  /** Share of the busy (non-idle) time. */
  readonly share: number;
}

export interface ProfileSummary {
  /** Sampled time that was not `(idle)`, ms. */
  readonly busyMs: number;
  readonly idleMs: number;
  readonly topSelf: ProfileRow[];
  readonly byPlace: ProfileRow[];
  /**
   * Each sample charged to the nearest frame on its stack that is Warden code outside the
   * store (src/ but not src/store/): which kernel or protocol function asked for the work.
   * Samples with no such frame go to their own place (a timer of the store, GC, …).
   */
  readonly byCaller: ProfileRow[];
  /** Inclusive time of named frames (every frame of that name, counted once per sample). */
  readonly inclusive: ProfileRow[];
}

/** Where a frame's code lives: `src/store/sqlite`, a package name, or Node's internals. */
export function placeOf(url: string, functionName: string): string {
  if (url === '') {
    // V8's pseudo frames: (garbage collector), (program), (idle), native code without a URL.
    return functionName.startsWith('(') ? functionName : '(native)';
  }
  if (url.startsWith('node:')) return 'node: internals';
  const path = url.replace(/^file:\/\//, '');
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
  if (pkg) return pkg[1]!;
  const rel = path.startsWith(repoDir) ? path.slice(repoDir.length + 1) : path;
  const parts = rel.split('/');
  // src/<layer>/<module dir or file>: deep enough to tell the store from the kernel.
  return parts.slice(0, Math.min(parts.length, 3)).join('/').replace(/\.ts$/, '');
}

/** `name file:line`, the file relative to the repository (or from node_modules on). */
function frameName(f: CallFrame): string {
  const path = f.url.replace(/^file:\/\//, '');
  const file = path.includes('node_modules/')
    ? path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length)
    : path.startsWith(repoDir)
      ? path.slice(repoDir.length + 1)
      : path;
  const where = f.url ? ` ${file}:${f.lineNumber + 1}` : '';
  return `${f.functionName || '(anonymous)'}${where}`;
}

/**
 * @param inclusiveOf function names whose inclusive time is reported (e.g. `commit`): a
 *   sample counts for a name when any frame of its stack has that name.
 */
export function summariseProfile(
  file: string,
  options: {
    top?: number;
    inclusiveOf?: readonly string[];
    /** Only samples taken in [start, end] µs of the monotonic clock (the timed steps). */
    window?: readonly [number, number];
  } = {},
): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const selfUs = new Map<number, number>();
  const [from, to] = options.window ?? [-Infinity, Infinity];
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    const delta = Math.max(0, profile.timeDeltas[i] ?? 0);
    at += delta;
    if (at < from || at > to) continue;
    // timeDeltas[i] is the time before sample i; attributing it to sample i is V8's convention.
    selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
  }
  let idleUs = 0;
  let busyUs = 0;
  const fnSelf = new Map<string, number>();
  const placeSelf = new Map<string, number>();
  const wanted = new Set(options.inclusiveOf ?? []);
  const incl = new Map<string, number>();
  const caller = new Map<string, number>();
  const isCaller = (f: CallFrame) => {
    const place = placeOf(f.url, f.functionName);
    return place.startsWith('src/') && !place.startsWith('src/store');
  };
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!;
    const f = node.callFrame;
    if (f.functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    busyUs += us;
    const name = frameName(f);
    fnSelf.set(name, (fnSelf.get(name) ?? 0) + us);
    const place = placeOf(f.url, f.functionName);
    placeSelf.set(place, (placeSelf.get(place) ?? 0) + us);
    let charged = `(no Warden caller) ${place}`;
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const cf = byId.get(cur)!.callFrame;
      if (isCaller(cf)) {
        charged = frameName(cf);
        break;
      }
    }
    caller.set(charged, (caller.get(charged) ?? 0) + us);
    if (wanted.size > 0) {
      const seen = new Set<string>();
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        const fn = byId.get(cur)!.callFrame.functionName;
        if (wanted.has(fn) && !seen.has(fn)) {
          seen.add(fn);
          incl.set(fn, (incl.get(fn) ?? 0) + us);
        }
      }
    }
  }
  const rows = (m: Map<string, number>, n: number): ProfileRow[] =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, us]) => ({ name, ms: us / 1000, share: busyUs ? us / busyUs : 0 }));
  return {
    busyMs: busyUs / 1000,
    idleMs: idleUs / 1000,
    topSelf: rows(fnSelf, options.top ?? 25),
    byPlace: rows(placeSelf, options.top ?? 25),
    byCaller: rows(caller, options.top ?? 25),
    inclusive: [...wanted].map((name) => ({
      name,
      ms: (incl.get(name) ?? 0) / 1000,
      share: busyUs ? (incl.get(name) ?? 0) / busyUs : 0,
    })),
  };
}
