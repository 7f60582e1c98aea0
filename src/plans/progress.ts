/**
 * `warden exec`'s progress on stderr (stdout keeps the kit's lines): a live line on a terminal,
 * a plain line every few seconds otherwise.
 */
import type { ExecProgress } from './executor.ts';

const PLAIN_EVERY_MS = 5_000;

export function formatProgress(p: ExecProgress): string {
  const remaining = p.total - p.done;
  const rate = p.doneHere > 0 ? p.doneHere / Math.max(p.elapsedMs, 1) : 0;
  const eta = rate > 0 && remaining > 0 ? ` · ETA ${clock(remaining / rate)}` : '';
  return `[exec] ${p.done}/${p.total} done · ${p.running} running · ${p.failed} failed${eta}`;
}

function clock(ms: number): string {
  const s = Math.ceil(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

export interface ProgressView {
  update(progress: ExecProgress): void;
  /** Ends the live line (prints the last state). */
  finish(): void;
}

export function progressView(stream: NodeJS.WriteStream, quiet: boolean): ProgressView {
  if (quiet) return { update: () => undefined, finish: () => undefined };
  let last: ExecProgress | null = null;
  if (stream.isTTY) {
    let drawn = 0;
    let timer: NodeJS.Timeout | null = null;
    const draw = (): void => {
      timer = null;
      if (!last) return;
      stream.write(`\r\x1b[K${formatProgress(last)}`);
      drawn = Date.now();
    };
    return {
      update: (p) => {
        last = p;
        if (Date.now() - drawn >= 100) draw();
        else timer ??= setTimeout(draw, 100);
      },
      finish: () => {
        if (timer) clearTimeout(timer);
        draw();
        if (last) stream.write('\n');
      },
    };
  }
  let printed = 0;
  let printedText = '';
  const print = (): void => {
    if (!last) return;
    const text = formatProgress(last);
    if (text === printedText) return;
    stream.write(`${text}\n`);
    printed = Date.now();
    printedText = text;
  };
  return {
    update: (p) => {
      last = p;
      if (Date.now() - printed >= PLAIN_EVERY_MS) print();
    },
    finish: print,
  };
}
