/**
 * Group activation (Gateway v4 reference §6.3), pure: does a message in a group wake the agent?
 *
 * - Direct messages always do (`not-group`).
 * - `always`: every group message does; the agent answers `NO_REPLY` when it has nothing to add.
 * - `mention` (the default): only a message that addresses the bot does, checked in this order:
 *   the channel's explicit mention flag (`mention`), a reply to one of the bot's messages
 *   (`reply`), a command (`command`: text starting with `/` and a non-space, non-`/` character),
 *   a bot name as `@name` or a whole word (`mention`), a configured `mentionPatterns` regex
 *   (`pattern`). Anything else is stored as context only (`no-mention`).
 *
 * Mention patterns come from config and run against untrusted text, so they are compiled
 * defensively: case-insensitive; a pattern that does not compile, is longer than 512 chars, or
 * nests unbounded quantifiers (`(a+)+`, `(\w*)*`: the classic catastrophic-backtracking shape) is
 * ignored; and only the first 16 KiB of the text (16,384 UTF-16 units) is scanned, which also
 * bounds the cost of the polynomial cases. This is a heuristic, not a proof: overlapping
 * alternations such as `(a|a)*` are not detected.
 */

export const GROUP_ACTIVATIONS = ['mention', 'always'] as const;
export type GroupActivation = (typeof GROUP_ACTIVATIONS)[number];
export const DEFAULT_GROUP_ACTIVATION: GroupActivation = 'mention';

/** How much of a message mention detection scans, in UTF-16 code units (16 KiB). */
export const MENTION_SCAN_MAX_CHARS = 16 * 1024;
/** Longer mention patterns are ignored. */
export const MENTION_PATTERN_MAX_CHARS = 512;
/** Longer bot names are ignored. */
const BOT_NAME_MAX_CHARS = 128;

export type ActivationReason =
  'not-group' | 'always' | 'mention' | 'pattern' | 'reply' | 'command' | 'no-mention';

export interface ActivationInput {
  /**
   * The session's activation (`sessions.patch {groupActivation}`, `/activation`).
   * @default 'mention'
   */
  readonly activation?: GroupActivation | null | undefined;
  /** True for group, channel and room sessions (`isGroupKey`). */
  readonly isGroup: boolean;
  readonly text: string;
  /** The channel reported an explicit @-mention of the bot (a Slack or Discord mention entity). */
  readonly mentioned?: boolean | undefined;
  /** The message replies to one of the bot's messages. */
  readonly replyToBot?: boolean | undefined;
  /** Regex sources (`mentionPatterns` config), matched case-insensitively. */
  readonly mentionPatterns?: readonly string[] | undefined;
  /** Names the bot answers to, matched as `@name` or a whole word, case-insensitively. */
  readonly botNames?: readonly string[] | undefined;
}

export interface ActivationDecision {
  readonly activate: boolean;
  readonly reason: ActivationReason;
}

/** `mention` or `always` from config or `/activation`; `null` for anything else. */
export function normalizeGroupActivation(raw: unknown): GroupActivation | null {
  if (typeof raw !== 'string') return null;
  const value = raw.trim().toLowerCase();
  return value === 'mention' || value === 'always' ? value : null;
}

/** Decides whether a message starts a run (see the module comment for the rules and order). */
export function shouldActivate(input: ActivationInput): ActivationDecision {
  if (!input.isGroup) return { activate: true, reason: 'not-group' };
  if ((input.activation ?? DEFAULT_GROUP_ACTIVATION) === 'always') {
    return { activate: true, reason: 'always' };
  }
  if (input.mentioned === true) return { activate: true, reason: 'mention' };
  if (input.replyToBot === true) return { activate: true, reason: 'reply' };
  if (isCommand(input.text)) return { activate: true, reason: 'command' };
  const text =
    input.text.length > MENTION_SCAN_MAX_CHARS
      ? input.text.slice(0, MENTION_SCAN_MAX_CHARS)
      : input.text;
  if ((input.botNames ?? []).some((name) => mentionsName(text, name))) {
    return { activate: true, reason: 'mention' };
  }
  if (compileMentionPatterns(input.mentionPatterns ?? []).some((re) => re.test(text))) {
    return { activate: true, reason: 'pattern' };
  }
  return { activate: false, reason: 'no-mention' };
}

/**
 * Compiles mention patterns case-insensitively, leaving out those that fail to compile, are too
 * long, or look catastrophic (nested unbounded quantifiers).
 */
export function compileMentionPatterns(patterns: readonly string[]): RegExp[] {
  const compiled: RegExp[] = [];
  for (const source of patterns) {
    if (source === '' || source.length > MENTION_PATTERN_MAX_CHARS) continue;
    if (hasNestedUnboundedQuantifier(source)) continue;
    try {
      compiled.push(new RegExp(source, 'i'));
    } catch {
      // An invalid pattern is ignored: one bad config entry must not silence the others.
    }
  }
  return compiled;
}

function isCommand(text: string): boolean {
  return /^\/[^\s/]/.test(text.trimStart());
}

const REGEX_SYNTAX = /[.*+?^${}()|[\]\\]/g;

function mentionsName(text: string, rawName: string): boolean {
  const name = rawName.trim().replace(/^@+/, '');
  if (name === '' || name.length > BOT_NAME_MAX_CHARS) return false;
  const escaped = name.replace(REGEX_SYNTAX, '\\$&');
  try {
    // Word edges by Unicode letters and digits, so "@Claw" matches but "Clawd" does not.
    return new RegExp(`(?<![\\p{L}\\p{N}_])@?${escaped}(?![\\p{L}\\p{N}_])`, 'iu').test(text);
  } catch {
    return false;
  }
}

/**
 * True when a group that contains an unbounded quantifier (`*`, `+`, `{n,}`) is itself followed by
 * one, the shape that backtracks exponentially. Escapes and character classes are skipped.
 */
export function hasNestedUnboundedQuantifier(source: string): boolean {
  // For each open group: does it contain an unbounded quantifier?
  const stack: boolean[] = [];
  let lastGroupUnbounded = false;
  for (let i = 0; i < source.length; i++) {
    const ch = source[i];
    if (ch === '\\') {
      i += 1;
      lastGroupUnbounded = false;
      continue;
    }
    if (ch === '[') {
      i = endOfClass(source, i);
      lastGroupUnbounded = false;
      continue;
    }
    if (ch === '(') {
      stack.push(false);
      lastGroupUnbounded = false;
      continue;
    }
    if (ch === ')') {
      lastGroupUnbounded = stack.pop() ?? false;
      // `((a+))+` nests too: the outer group contains what the inner one does.
      if (lastGroupUnbounded && stack.length > 0) stack[stack.length - 1] = true;
      continue;
    }
    const quantifier = unboundedQuantifierAt(source, i);
    if (quantifier > 0) {
      if (lastGroupUnbounded) return true;
      if (stack.length > 0) stack[stack.length - 1] = true;
      i += quantifier - 1;
    } else if (ch === '}' || ch === '?') {
      // A bounded quantifier or a lazy marker: it neither nests nor clears the group flag.
      continue;
    }
    lastGroupUnbounded = false;
  }
  return false;
}

/** The length of an unbounded quantifier (`*`, `+`, `{n,}`) at `i`, or 0. */
function unboundedQuantifierAt(source: string, i: number): number {
  const ch = source[i];
  if (ch === '*' || ch === '+') return 1;
  if (ch === '{') {
    const m = /^\{\d+,\}/.exec(source.slice(i, i + 16));
    if (m !== null) return m[0].length;
  }
  return 0;
}

/** The index of the `]` closing the class opened at `start` (or the last); JS `[]` is empty. */
function endOfClass(source: string, start: number): number {
  for (let i = start + 1; i < source.length; i++) {
    if (source[i] === '\\') i += 1;
    else if (source[i] === ']') return i;
  }
  return source.length - 1;
}
