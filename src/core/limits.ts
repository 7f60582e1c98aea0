/**
 * Size limits on everything Warden stores (DESIGN.md §2.8, "bounded everything"), and the
 * helpers that measure values against them. Pure: no I/O.
 *
 * Sizes are bytes of UTF-8: of the value's JSON text for structured values (what the store
 * writes), of the text itself for strings that are stored as text (error messages, streamed
 * model text). Two policies:
 *
 * - **Reject** (`assertWithin`): an oversized payload, result, progress report, run input, step
 *   output, state patch or effect result is refused with PAYLOAD_TOO_LARGE and nothing of it is
 *   stored. Where the value is the outcome of work already done (a job result, a step output),
 *   the job or step fails, non-retryably, with that error instead.
 * - **Truncate** (`truncateText`): an error message is cut to its limit with a marker, never
 *   refused — a failure must always be recorded.
 */
import { WardenError } from './errors.ts';

/** Every size limit, in bytes. */
export interface Limits {
  /** A job's payload (JSON), checked at submit. */
  readonly payloadBytes: number;
  /** A job's result (JSON): a larger one fails the job, non-retryably. */
  readonly resultBytes: number;
  /** One `job.progress(data)` report (JSON). */
  readonly progressBytes: number;
  /** A run's input, and separately its metadata (JSON), checked at `startRun`. */
  readonly runInputBytes: number;
  /** A workflow step's output (JSON): a larger one fails the step, non-retryably. */
  readonly stepOutputBytes: number;
  /** A workflow step's state patch (JSON): a larger one fails the step, non-retryably. */
  readonly statePatchBytes: number;
  /** A result recorded in the effect journal (JSON). */
  readonly effectResultBytes: number;
  /** Streamed model text written as `model.delta` events, per model call (UTF-8). */
  readonly streamedTextBytes: number;
  /** An error message stored on a task, attempt, schedule or event (UTF-8): longer ones are truncated. */
  readonly errorMessageBytes: number;
}

const KiB = 1_024;
const MiB = 1_048_576;

/** The defaults, documented in docs/queue.md and docs/embedding.md. */
export const DEFAULT_LIMITS: Limits = Object.freeze({
  payloadBytes: MiB,
  resultBytes: MiB,
  progressBytes: 64 * KiB,
  runInputBytes: MiB,
  stepOutputBytes: MiB,
  statePatchBytes: 256 * KiB,
  effectResultBytes: MiB,
  streamedTextBytes: 256 * KiB,
  errorMessageBytes: 4 * KiB,
});

/** The smallest accepted limit: room for the truncation marker and a useful message. */
export const MIN_LIMIT_BYTES = 256;

/** Bytes of `text` in UTF-8 (lone surrogates count 3, as the encoder replaces them). */
export function utf8Bytes(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) bytes += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 2; // a surrogate pair: 2 UTF-16 units, 4 bytes
        i += 1;
      } else bytes += 2;
    } else bytes += 2;
  }
  return bytes;
}

/**
 * Bytes of `value`'s JSON text (`undefined` counts as `null`). INVALID_PARAMS when the value
 * cannot be written as JSON (a cycle, a BigInt).
 */
export function jsonBytes(value: unknown, what = 'the value'): number {
  let text: string | undefined;
  try {
    text = JSON.stringify(value ?? null);
  } catch (error) {
    throw new WardenError(
      'INVALID_PARAMS',
      `${what} is not serialisable as JSON: ${(error as Error).message}`,
      { cause: error, details: { what } },
    );
  }
  return text === undefined ? 4 : utf8Bytes(text);
}

/**
 * Measures `value` as JSON and throws PAYLOAD_TOO_LARGE (details `{what, bytes, max_bytes}`)
 * when it is over `maxBytes`; returns its size otherwise. `what` names the value for the
 * message ("the result of job 'x'"); `advice` says what to do (a default is given).
 */
export function assertWithin(
  what: string,
  value: unknown,
  maxBytes: number,
  advice = 'store large data elsewhere (a file or an object store) and pass a reference',
): number {
  const bytes = jsonBytes(value, what);
  if (bytes > maxBytes) {
    throw new WardenError(
      'PAYLOAD_TOO_LARGE',
      `${what} is ${bytes} bytes of JSON; the limit is ${maxBytes}: ${advice}`,
      { retryable: false, details: { what, bytes, max_bytes: maxBytes } },
    );
  }
  return bytes;
}

/**
 * `text` cut to at most `maxBytes` of UTF-8 (never inside a character), ending with
 * `… (truncated, N bytes)` where N is the original size; unchanged when it fits.
 */
export function truncateText(text: string, maxBytes: number): string {
  const total = utf8Bytes(text);
  if (total <= maxBytes) return text;
  const marker = ` … (truncated, ${total} bytes)`;
  const budget = Math.max(0, maxBytes - utf8Bytes(marker));
  let used = 0;
  let end = 0;
  while (end < text.length) {
    const c = text.charCodeAt(end);
    const pair = c >= 0xd800 && c <= 0xdbff && end + 1 < text.length;
    const units = pair ? 2 : 1;
    const size = utf8Bytes(text.slice(end, end + units));
    if (used + size > budget) break;
    used += size;
    end += units;
  }
  return text.slice(0, end) + marker;
}

/** An error message as stored: truncated to `errorMessageBytes` (4 KiB) with a marker. */
export function boundedMessage(
  message: string,
  maxBytes: number = DEFAULT_LIMITS.errorMessageBytes,
): string {
  return truncateText(message, maxBytes);
}

/**
 * A user-supplied limit: `undefined` gives the default; anything but an integer of at least
 * {@link MIN_LIMIT_BYTES} is INVALID_PARAMS naming `option`.
 */
export function resolveLimit(option: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < MIN_LIMIT_BYTES) {
    throw new WardenError(
      'INVALID_PARAMS',
      `${option} must be an integer number of bytes of at least ${MIN_LIMIT_BYTES} (got ${String(value)})`,
      { details: { option, value } },
    );
  }
  return value;
}
