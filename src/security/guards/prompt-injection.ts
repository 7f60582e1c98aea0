/**
 * Prompt-injection scoring of untrusted text (tool outputs, fetched pages, inbound messages),
 * DESIGN.md §8. Weighted heuristics, not a classifier: each signal has a weight in 0..1, a code
 * counts once (its heaviest match), and the score is a noisy-OR, 1 − Π(1 − wᵢ), so one strong
 * signal reaches `review` and two reach `block`, while weak ones (urgency, "you are now") need
 * company. Defaults: review at 0.4, block at 0.7 (measured on test/fixtures/guards, see
 * bench/results/guards.md). The patterns run on normalised text (injection-text.ts); text
 * decoded from base64, ROT13 and Unicode tags is scored again and counts as
 * `encoded_instruction`.
 *
 * Bounded work: at most {@link MAX_INJECTION_INPUT} characters are read, and every pattern is a
 * linear-time regular expression (no nested quantifiers, gaps bounded like `.{0,40}`).
 * It does not understand meaning: paraphrases, other languages than the few listed, and
 * instructions split across messages get through; quoting an attack in a benign text is
 * flagged. docs/guards.md lists the limits.
 */
import { z } from 'zod';

import { checkParams, invalidParams, param } from '../../core/index.ts';
import { CSS_HIDE, INJECTION_PATTERNS, type InjectionPattern } from './injection-patterns.ts';
import { base64Texts, prepareText, rot13 } from './injection-text.ts';

export const INJECTION_VERDICTS = ['clean', 'review', 'block'] as const;
export type InjectionVerdict = (typeof INJECTION_VERDICTS)[number];

export interface InjectionSignal {
  readonly code: string;
  readonly message: string;
  /** 0..1. */
  readonly weight: number;
  /** The matched text, normalised (lower case, look-alikes folded), at most 120 characters. */
  readonly excerpt: string;
}

export interface InjectionScore {
  /** 0..1, rounded to 3 decimals. */
  readonly score: number;
  readonly verdict: InjectionVerdict;
  /** Heaviest first. */
  readonly signals: readonly InjectionSignal[];
}

export interface ScoreInjectionOptions {
  /** Score at or above which the verdict is `review`. @default 0.4 */
  reviewAt?: number;
  /** Score at or above which the verdict is `block`. @default 0.7 */
  blockAt?: number;
}

export const INJECTION_THRESHOLDS = { reviewAt: 0.4, blockAt: 0.7 } as const;

/** Characters read; the rest is ignored (signal `truncated`). */
export const MAX_INJECTION_INPUT = 256 * 1024;

export { INJECTION_PATTERNS, type InjectionPattern };

const argsSchema = z.object({
  text: param.string('the text to score (a string)'),
  options: param
    .options({
      reviewAt: param
        .is<number>('a number from 0 to 1', (v) => typeof v === 'number' && v >= 0 && v <= 1)
        .optional(),
      blockAt: param
        .is<number>('a number from 0 to 1', (v) => typeof v === 'number' && v >= 0 && v <= 1)
        .optional(),
    })
    .optional(),
});

class Signals {
  readonly #byCode = new Map<string, InjectionSignal>();

  add(code: string, weight: number, message: string, excerpt: string): void {
    const prev = this.#byCode.get(code);
    if (prev === undefined || weight > prev.weight) {
      this.#byCode.set(code, { code, message, weight, excerpt: excerpt.slice(0, 120) });
    }
  }

  has(code: string): boolean {
    return this.#byCode.has(code);
  }

  list(): InjectionSignal[] {
    return [...this.#byCode.values()].sort(
      (a, b) => b.weight - a.weight || a.code.localeCompare(b.code),
    );
  }

  score(): number {
    let keep = 1;
    for (const s of this.#byCode.values()) keep *= 1 - s.weight;
    return Math.round((1 - keep) * 1000) / 1000;
  }
}

/**
 * Scores `text` for prompt injection. INVALID_PARAMS when `text` is not a string, a threshold
 * is outside 0..1, or `reviewAt` > `blockAt`.
 */
export function scoreInjection(text: string, options: ScoreInjectionOptions = {}): InjectionScore {
  checkParams('scoreInjection', argsSchema, { text, options });
  const reviewAt = options.reviewAt ?? INJECTION_THRESHOLDS.reviewAt;
  const blockAt = options.blockAt ?? INJECTION_THRESHOLDS.blockAt;
  if (reviewAt > blockAt) {
    throw invalidParams('scoreInjection', [
      {
        path: 'options.reviewAt',
        message: `expected at most options.blockAt (${blockAt}) (got ${reviewAt})`,
      },
    ]);
  }
  const signals = new Signals();
  scan(text, signals, 0);
  const score = signals.score();
  const verdict: InjectionVerdict =
    score >= blockAt ? 'block' : score >= reviewAt ? 'review' : 'clean';
  return { score, verdict, signals: signals.list() };
}

function scan(input: string, signals: Signals, depth: number): void {
  const raw = input.length > MAX_INJECTION_INPUT ? input.slice(0, MAX_INJECTION_INPUT) : input;
  if (raw.length < input.length)
    signals.add(
      'truncated',
      0.1,
      `only the first ${MAX_INJECTION_INPUT} characters were scanned`,
      '',
    );
  if (Buffer.byteLength(raw) > 32_000)
    signals.add('oversized', 0.05, 'longer than 32 000 bytes', '');
  const t = prepareText(raw);
  const before = signals.list().length;
  for (const pat of INJECTION_PATTERNS) {
    const m = pat.re.exec(pat.field === 'folded' ? t.folded : t.plain);
    if (m !== null) signals.add(pat.code, pat.weight, pat.message, m[0]);
  }
  const found = signals.list().length > before;
  if (signals.has('authority') && signals.has('urgency')) {
    signals.add('authority_urgency', 0.3, 'authority claim combined with urgency', '');
  }
  if (t.invisible >= 3) signals.add('hidden_text', 0.3, `${t.invisible} invisible characters`, '');
  if (t.bidi > 0) signals.add('hidden_text', 0.3, `${t.bidi} bidi override characters`, '');
  if (depth > 0) return;
  // Hidden or encoded text that itself reads as instructions.
  const hidden: [string, string, number, string][] = [];
  if (t.tagText !== '') {
    signals.add('hidden_text', 0.6, 'text hidden in Unicode tag characters', t.tagText);
    hidden.push([
      'encoded_instruction',
      'instructions hidden in Unicode tag characters',
      0.6,
      t.tagText,
    ]);
  }
  for (const body of t.comments)
    hidden.push(['hidden_text', 'instructions inside an HTML comment', 0.45, body]);
  for (const decoded of base64Texts(t.clean))
    hidden.push(['encoded_instruction', 'base64 text that decodes to instructions', 0.6, decoded]);
  if (/\brot-?13\b|\bcaesar\b/.test(t.plain) || t.plain.length <= 16_384) {
    hidden.push([
      'encoded_instruction',
      'ROT13 text that decodes to instructions',
      0.6,
      rot13(t.plain),
    ]);
  }
  for (const [code, message, weight, body] of hidden) {
    const inner = new Signals();
    scan(body, inner, depth + 1);
    const strong = inner.list().filter((s) => s.weight >= 0.3 && s.code !== 'hidden_text');
    if (inner.score() >= 0.4 || strong.length > 0)
      signals.add(code, weight, message, strong[0]?.excerpt ?? body);
  }
  if ((found || signals.has('hidden_text')) && CSS_HIDE.test(t.folded)) {
    signals.add(
      'hidden_text',
      0.35,
      'instructions next to CSS that hides text',
      CSS_HIDE.exec(t.folded)?.[0] ?? '',
    );
  }
}
