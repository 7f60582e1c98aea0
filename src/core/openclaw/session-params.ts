/**
 * Params of the OpenClaw session methods (reference/openclaw-gateway-v4.md §4.5–§4.11) and the
 * scope each call needs (§2.6 "decided per call"): `sessions.patch`, `.reset`, `.delete`,
 * `.compact`, `.resolve`, `.preview` and `.list`. Run them through `checkParams` with
 * `where = 'invalid <method> params'`: errors are INVALID_PARAMS naming the field, what was
 * expected and what was sent (the gateway maps them to INVALID_REQUEST).
 *
 * Parity rules of the Rust rewrite (seeds/004) implemented here: `key` or its alias
 * `sessionKey`; every tuning knob validated and normalised to its canonical value (aliases such
 * as `med`, `on`, `true` accepted); `null` clears a field; `"off"` clears `reasoningLevel` and
 * `responseUsage`; labels trimmed, 1–64 characters, never silently truncated (also the `label`
 * filters of list and resolve); `sendPolicy` only `allow|deny|null` (`inherit` rejected);
 * `spawnedBy`/`spawnDepth` rejected (immutable: set only when a subagent session is created);
 * reset `reason` is `new|reset`; compact `maxLines` ≥ 1, default 400; preview and list bounds.
 *
 * Unknown param keys are accepted and ignored (the object schemas drop them), because newer
 * OpenClaw clients add fields (§1.2: "A compatible server SHOULD still accept unknown param
 * keys"). A dropped key never raises the scope of a call. Pure: no I/O.
 */
import { z } from 'zod';

import { param } from '../params.ts';

export const OPENCLAW_LABEL_MAX_LENGTH = 64;

export const THINKING_LEVELS = ['off', 'minimal', 'low', 'medium', 'high', 'xhigh'] as const;
export const VERBOSE_LEVELS = ['off', 'on', 'full'] as const;
export const TRACE_LEVELS = ['off', 'on', 'raw'] as const;
/** `off` is accepted on input and clears the override (never stored). */
export const REASONING_LEVELS = ['on', 'stream'] as const;
/** `off` clears and `on` means `tokens` on input (older clients); only these are stored. */
export const RESPONSE_USAGE_LEVELS = ['tokens', 'full'] as const;
export const ELEVATED_LEVELS = ['off', 'on', 'ask', 'full'] as const;
export const EXEC_HOSTS = ['auto', 'sandbox', 'gateway', 'node'] as const;
export const EXEC_SECURITY_LEVELS = ['deny', 'allowlist', 'full'] as const;
export const EXEC_ASK_MODES = ['off', 'on-miss', 'always'] as const;
export const PERMISSION_MODES = ['read-only', 'guarded', 'workspace', 'full'] as const;
export const SANDBOX_MODES = ['off'] as const;
export const SEND_POLICIES = ['allow', 'deny'] as const;
export const GROUP_ACTIVATIONS = ['mention', 'always'] as const;
export const QUEUE_MODES = ['steer', 'followup', 'collect', 'interrupt'] as const;
export const SESSION_COLORS = [
  'red',
  'blue',
  'green',
  'yellow',
  'purple',
  'orange',
  'pink',
  'cyan',
] as const;
export const ATTENTION_ICONS = ['hand', 'key', 'alert', 'flag', 'lock', 'hourglass'] as const;
export const BOARD_FACES = ['chat', 'dashboard'] as const;
export const BOARD_PRESENTATIONS = ['split', 'expanded'] as const;

export const toolOverridesSchema = z.strictObject({
  mcpServers: z.record(z.string().min(1), z.boolean()).optional(),
  mcpToolsDeny: z.record(z.string().min(1), z.array(z.string().min(1))).optional(),
  skills: z.record(z.string().min(1), z.boolean()).optional(),
  webSearch: z.boolean().optional(),
});
export type ToolOverrides = z.output<typeof toolOverridesSchema>;

// ---------------------------------------------------------------------------------------------
// Field parsers with messages in the user's terms (checkParams adds "(got …)")

class Bad {
  readonly message: string;
  constructor(message: string) {
    this.message = message;
  }
}

function field<T>(parse: (value: unknown) => T | Bad) {
  return z.unknown().transform((value, ctx): T => {
    const out = parse(value);
    if (out instanceof Bad) {
      ctx.addIssue({ code: 'custom', message: out.message });
      return z.NEVER;
    }
    return out;
  });
}

/** An optional patch field: absent = untouched, `null` = clear, else `parse`. */
function clearable<T>(parse: (value: unknown) => T | Bad) {
  return field<T | null | undefined>((v) =>
    v === undefined || v === null ? v : parse(v),
  ).optional();
}

function quoted(values: readonly string[]): string {
  return values.map((v) => `'${v}'`).join(', ');
}

/** One of `values`, case-insensitively, or an alias of one; `clears` values parse to null. */
function canonical<const V extends readonly string[]>(
  values: V,
  aliases: Readonly<Record<string, V[number] | null>> = {},
  shown: readonly string[] = values,
): (value: unknown) => V[number] | null | Bad {
  const known = new Set<string>(values);
  const expected = `expected one of ${quoted(shown)}`;
  return (value) => {
    if (typeof value !== 'string') return new Bad(expected);
    const k = value.trim().toLowerCase();
    if (known.has(k)) return k;
    return Object.hasOwn(aliases, k) ? (aliases[k] as V[number] | null) : new Bad(expected);
  };
}

/** Trimmed text of 1–`max` characters, never truncated. */
function text(what: string, max: number) {
  return (value: unknown): string | Bad => {
    if (typeof value !== 'string')
      return new Bad(`expected ${what} (a string of 1–${max} characters)`);
    const t = value.trim();
    if (t === '') return new Bad(`expected ${what} (1–${max} characters after trimming)`);
    if (t.length > max)
      return new Bad(
        `expected at most ${max} characters for ${what}; it is never truncated (got ${t.length} characters)`,
      );
    return t;
  };
}

const labelText = text('a label', OPENCLAW_LABEL_MAX_LENGTH);

/** A label filter (`sessions.list`, `sessions.resolve`): validated like patch labels. */
export const sessionLabel = field(labelText);

const ON_OFF = { false: 'off', no: 'off', '0': 'off', true: 'on', yes: 'on', '1': 'on' } as const;

const parseThinking = canonical(THINKING_LEVELS, {
  on: 'low',
  enable: 'low',
  enabled: 'low',
  min: 'minimal',
  think: 'minimal',
  thinkhard: 'low',
  'think-hard': 'low',
  mid: 'medium',
  med: 'medium',
  harder: 'medium',
  thinkharder: 'medium',
  'think-harder': 'medium',
  ultra: 'high',
  ultrathink: 'high',
  highest: 'high',
  max: 'high',
  'x-high': 'xhigh',
  x_high: 'xhigh',
  extrahigh: 'xhigh',
});
const parseVerbose = canonical(VERBOSE_LEVELS, {
  ...ON_OFF,
  minimal: 'on',
  all: 'full',
  everything: 'full',
});
const parseTrace = canonical(TRACE_LEVELS, { ...ON_OFF, unfiltered: 'raw' });
const parseReasoning = canonical(
  REASONING_LEVELS,
  {
    off: null,
    false: null,
    no: null,
    '0': null,
    hide: null,
    hidden: null,
    true: 'on',
    yes: 'on',
    '1': 'on',
    show: 'on',
    visible: 'on',
    streaming: 'stream',
    live: 'stream',
  },
  ['off', 'on', 'stream'],
);
const parseResponseUsage = canonical(
  RESPONSE_USAGE_LEVELS,
  { off: null, on: 'tokens', token: 'tokens', minimal: 'tokens' },
  ['off', 'tokens', 'full', 'on'],
);
const parseElevated = canonical(ELEVATED_LEVELS, {
  ...ON_OFF,
  auto: 'full',
  'auto-approve': 'full',
  prompt: 'ask',
  approval: 'ask',
});
const parseSendPolicy = (value: unknown) =>
  typeof value === 'string' && value.trim().toLowerCase() === 'inherit'
    ? new Bad(
        "expected 'allow' or 'deny'; 'inherit' is not accepted — send null to clear the override and inherit the default",
      )
    : canonical(SEND_POLICIES)(value);

function boolean(value: unknown): boolean | Bad {
  return typeof value === 'boolean' ? value : new Bad('expected true or false');
}

function toolOverrides(value: unknown): ToolOverrides | Bad {
  const parsed = toolOverridesSchema.safeParse(value);
  return parsed.success
    ? parsed.data
    : new Bad('expected {mcpServers?, mcpToolsDeny?, skills?, webSearch?} tool overrides');
}

/** Every patchable field of `sessions.patch` (§4.8 and the seed's tuning fields). */
const patchFields = {
  label: clearable(labelText),
  autoLabel: clearable(text('an automatic label', OPENCLAW_LABEL_MAX_LENGTH)),
  icon: clearable(text('an icon (a name, an emoji or svg:…)', 4_096)),
  color: clearable(canonical(SESSION_COLORS)),
  category: clearable(text('a category', OPENCLAW_LABEL_MAX_LENGTH)),
  boardFace: clearable(canonical(BOARD_FACES)),
  boardPresentation: clearable(canonical(BOARD_PRESENTATIONS)),
  // An empty note clears like null; null also clears `attention` (§4.8).
  statusNote: clearable((v) =>
    typeof v !== 'string' || v.trim().length > 120
      ? new Bad('expected a status note of at most 120 characters')
      : v.trim() === ''
        ? null
        : v.trim(),
  ),
  attention: clearable(canonical(ATTENTION_ICONS)),
  pinned: clearable(boolean),
  archived: clearable(boolean),
  unread: clearable(boolean),
  ttlMinutes: clearable((v) =>
    typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 120
      ? v
      : new Bad('expected an integer from 1 to 120'),
  ),
  model: clearable(text('a model (model or provider/model)', 256)),
  agentRuntime: clearable(text('an agent runtime', 256)),
  contextWindow: clearable((v) =>
    typeof v === 'number' && Number.isSafeInteger(v) && v > 0
      ? String(v)
      : text('a context window such as 200k', 64)(v),
  ),
  thinkingLevel: clearable(parseThinking),
  fastMode: clearable((v) =>
    typeof v === 'boolean' || v === 'auto' ? v : new Bad("expected true, false or 'auto'"),
  ),
  verboseLevel: clearable(parseVerbose),
  traceLevel: clearable(parseTrace),
  reasoningLevel: clearable(parseReasoning),
  responseUsage: clearable(parseResponseUsage),
  elevatedLevel: clearable(parseElevated),
  execHost: clearable(canonical(EXEC_HOSTS)),
  execSecurity: clearable(canonical(EXEC_SECURITY_LEVELS)),
  execAsk: clearable(canonical(EXEC_ASK_MODES)),
  execNode: clearable(text('a node id or name', 256)),
  permissionMode: clearable(canonical(PERMISSION_MODES)),
  sandboxMode: clearable(canonical(SANDBOX_MODES)),
  toolOverrides: clearable(toolOverrides),
  sendPolicy: clearable(parseSendPolicy),
  groupActivation: clearable(canonical(GROUP_ACTIVATIONS)),
  queueMode: clearable(canonical(QUEUE_MODES)),
};

export type PatchField = keyof typeof patchFields;
export const PATCH_FIELDS = Object.keys(patchFields) as readonly PatchField[];

// ---------------------------------------------------------------------------------------------
// Params schemas

const keyText = text('a session key', 512);
const optionalText = (what: string, max = 256) => clearable(text(what, max));

/**
 * Adds `key` and its alias `sessionKey` (one required; both must agree) and returns the params
 * with `key` only.
 */
/** The message when params are not an object at all. */
const PARAMS_OBJECT = { error: 'expected a params object' } as const;

interface KeyFields {
  readonly key?: string | null | undefined;
  readonly sessionKey?: string | null | undefined;
}

type Keyed<T> = Omit<T, 'key' | 'sessionKey'> & { readonly key: string };

function pickKey<T extends KeyFields>(value: T, ctx: z.core.$RefinementCtx): Keyed<T> {
  const { key, sessionKey, ...rest } = value;
  const chosen = key ?? sessionKey;
  if (chosen === undefined || chosen === null) {
    ctx.addIssue({
      code: 'custom',
      path: ['key'],
      message: 'expected the session key (key, or its alias sessionKey)',
    });
    return z.NEVER;
  }
  if (typeof key === 'string' && typeof sessionKey === 'string' && key !== sessionKey) {
    ctx.addIssue({
      code: 'custom',
      path: ['sessionKey'],
      message: `expected the same key as key ('${key}'); sessionKey is only its alias`,
    });
    return z.NEVER;
  }
  return { ...rest, key: chosen };
}

/**
 * Adds `key` and its alias `sessionKey` (one required; both must agree) and returns the params
 * with `key` only.
 */
function keyed<S extends z.ZodRawShape>(shape: S) {
  return z
    .object({ ...shape, key: clearable(keyText), sessionKey: clearable(keyText) }, PARAMS_OBJECT)
    .transform((value, ctx) => pickKey(value as z.output<z.ZodObject<S>> & KeyFields, ctx));
}

const revision = clearable((v) =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
    ? String(v)
    : typeof v === 'string' && /^\s*\d+\s*$/.test(v)
      ? String(Number(v.trim()))
      : new Bad('expected a lifecycle revision (a decimal counter, as returned in entry)'),
);

const guards = {
  agentId: optionalText('an agent id', 64),
  expectedSessionId: optionalText('a session id'),
  expectedLifecycleRevision: revision,
};

const immutable = (name: 'spawnedBy' | 'spawnDepth') =>
  field<undefined>((v) =>
    v === undefined
      ? undefined
      : new Bad(
          `${name} is immutable: it is set only when a subagent session is created, never by sessions.patch`,
        ),
  ).optional();

/** `sessions.patch` params (§4.8). Output: canonical values; `null` means "clear". */
export const sessionsPatchParams = keyed({
  ...guards,
  spawnedBy: immutable('spawnedBy'),
  spawnDepth: immutable('spawnDepth'),
  ...patchFields,
});
export type SessionsPatchParams = z.output<typeof sessionsPatchParams>;

/** `sessions.reset` params (§4.9): `reason` is `new` or `reset` (default `reset`). */
export const sessionsResetParams = keyed({
  agentId: guards.agentId,
  expectedSessionId: guards.expectedSessionId,
  reason: param.oneOf(['new', 'reset']).default('reset'),
});
export type SessionsResetParams = z.output<typeof sessionsResetParams>;

/** `sessions.delete` params (§4.10): `deleteTranscript` defaults to true as in OpenClaw. */
export const sessionsDeleteParams = keyed({
  ...guards,
  deleteTranscript: param.boolean().default(true),
  expectedSessionUpdatedAt: param
    .is<number>('a time in ms ≥ 0', (v) => typeof v === 'number' && Number.isFinite(v) && v >= 0)
    .optional(),
  emitLifecycleHooks: param.boolean().default(true),
  archivedOnly: param.boolean().default(false),
});
export type SessionsDeleteParams = z.output<typeof sessionsDeleteParams>;

/** `sessions.compact` params (§4.11): `maxLines` an integer ≥ 1, default 400. */
export const sessionsCompactParams = keyed({
  agentId: guards.agentId,
  maxLines: param.int(1).default(400),
});
export type SessionsCompactParams = z.output<typeof sessionsCompactParams>;

/** `sessions.resolve` params (§4.7): at least one selector. */
export const sessionsResolveParams = z
  .object(
    {
      key: optionalText('a session key', 512),
      sessionKey: optionalText('a session key', 512),
      sessionId: optionalText('a session id'),
      label: sessionLabel.optional(),
      reference: z.object({ key: field(keyText), slug: z.string().optional() }).optional(),
      shortId: optionalText('a session id prefix'),
      slugHint: z.string().optional(),
      agentId: optionalText('an agent id', 64),
      spawnedBy: optionalText('a parent session key', 512),
      includeGlobal: param.boolean().default(false),
      includeUnknown: param.boolean().default(false),
      allowMissing: param.boolean().default(false),
    },
    PARAMS_OBJECT,
  )
  .transform((value, ctx) => {
    const { sessionKey, reference, slugHint: _hint, ...rest } = value;
    const key = rest.key ?? sessionKey ?? reference?.key ?? undefined;
    const out = {
      ...rest,
      key: key ?? undefined,
      sessionId: rest.sessionId ?? undefined,
      shortId: rest.shortId ?? undefined,
      agentId: rest.agentId ?? undefined,
      spawnedBy: rest.spawnedBy ?? undefined,
    };
    if (
      out.key === undefined &&
      out.sessionId === undefined &&
      out.label === undefined &&
      out.shortId === undefined &&
      out.spawnedBy === undefined
    ) {
      ctx.addIssue({
        code: 'custom',
        message: 'expected a selector: key, sessionId, label, shortId or spawnedBy',
      });
      return z.NEVER;
    }
    return out;
  });
export type SessionsResolveParams = z.output<typeof sessionsResolveParams>;

/** Preview bounds (§4.6, and the Rust rewrite's clamps). */
export const PREVIEW_LIMITS = { maxKeys: 64, maxItems: 256, maxChars: 4_096 } as const;

/** `sessions.preview` params: 1–64 keys (kept as asked), `limit` ≥ 1, `maxChars` ≥ 20. */
export const sessionsPreviewParams = z.object(
  {
    keys: z
      .array(field(keyText), { error: 'expected an array of session keys' })
      .min(1, 'expected at least one key')
      .max(PREVIEW_LIMITS.maxKeys, `expected at most ${PREVIEW_LIMITS.maxKeys} keys`),
    limit: param
      .int(1)
      .default(12)
      .transform((v) => Math.min(v, PREVIEW_LIMITS.maxItems)),
    maxChars: param
      .int(20)
      .default(240)
      .transform((v) => Math.min(v, PREVIEW_LIMITS.maxChars)),
  },
  PARAMS_OBJECT,
);
export type SessionsPreviewParams = z.output<typeof sessionsPreviewParams>;

/** `sessions.list` paging bounds: default 200 rows, clamped to 1..1000 (the Rust rewrite's). */
export const LIST_LIMITS = { defaultLimit: 200, maxLimit: 1_000 } as const;

const integer = param.is<number>(
  'an integer',
  (v) => typeof v === 'number' && Number.isSafeInteger(v),
);

/**
 * `sessions.list` params (§4.5). `includeGlobal`/`includeUnknown` default to false as in
 * TypeScript OpenClaw (the Rust rewrite defaulted them to true; the CLI sends them explicitly).
 * `archived` defaults to false (active sessions only). Accepted but not evaluated (Warden records
 * none of them): `excludeSystem`, `includeActivitySummary`, `projectId`, `workspaceDir`,
 * `ownerId`, `creatorId`, `involvingMe` and the other newer filters.
 */
export const sessionsListParams = z.object(
  {
    limit: integer
      .default(LIST_LIMITS.defaultLimit)
      .transform((v) => Math.min(Math.max(v, 1), LIST_LIMITS.maxLimit)),
    offset: param.int(0).default(0),
    activeMinutes: param.int(1).optional(),
    activeOnly: param.boolean().default(false),
    sortBy: param.oneOf(['updatedAt', 'lastInteractionAt', 'activity']).default('updatedAt'),
    includeGlobal: param.boolean().default(false),
    includeUnknown: param.boolean().default(false),
    excludeSubagents: param.boolean().default(false),
    excludeCron: param.boolean().default(false),
    configuredAgentsOnly: param.boolean().default(false),
    includeDerivedTitles: param.boolean().default(false),
    includeLastMessage: param.boolean().default(false),
    label: sessionLabel.optional(),
    agentId: field(text('an agent id', 64)).optional(),
    spawnedBy: field(text('a parent session key', 512)).optional(),
    search: param
      .string('a search string')
      .optional()
      .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim().toLowerCase())),
    archived: param
      .is<boolean | 'all'>("true, false or 'all'", (v) => typeof v === 'boolean' || v === 'all')
      .default(false),
    pinned: param.boolean().optional(),
    /** Exact category; '' selects sessions without one. */
    group: param.string('a category name').optional(),
  },
  PARAMS_OBJECT,
);
export type SessionsListParams = z.output<typeof sessionsListParams>;

// ---------------------------------------------------------------------------------------------
// Scopes decided per call (§2.6)

export type OperatorWriteScope = 'operator.write' | 'operator.admin';

/** Fields a write-scoped operator may patch; everything else needs admin (§2.6). */
export const WRITE_PATCH_FIELDS: ReadonlySet<PatchField> = new Set<PatchField>([
  'label',
  'autoLabel',
  'icon',
  'color',
  'category',
  'boardFace',
  'boardPresentation',
  'pinned',
  'archived',
  'unread',
  'model',
  'agentRuntime',
  'thinkingLevel',
  'fastMode',
  'permissionMode',
]);

/**
 * The scope a `sessions.patch` call needs: `operator.write` when it touches only presentation,
 * model, runtime, thinking, fast mode, or `permissionMode` other than `full`; `operator.admin`
 * otherwise (for example `execSecurity`). Takes the parsed params, so ignored unknown keys never
 * raise the scope.
 */
export function patchScope(params: SessionsPatchParams): OperatorWriteScope {
  for (const name of PATCH_FIELDS) {
    const value = params[name];
    if (value === undefined) continue;
    if (!WRITE_PATCH_FIELDS.has(name)) return 'operator.admin';
    if (name === 'permissionMode' && value === 'full') return 'operator.admin';
  }
  return 'operator.write';
}

/**
 * {@link patchScope} for raw params that do not parse: decided by the fields present, so a
 * write client's bad label is a params error, not a missing admin scope. A `permissionMode`
 * that is not a known non-`full` mode needs admin.
 */
export function patchScopeOfFields(params: Readonly<Record<string, unknown>>): OperatorWriteScope {
  for (const name of PATCH_FIELDS) {
    const value = params[name];
    if (value === undefined) continue;
    if (!WRITE_PATCH_FIELDS.has(name)) return 'operator.admin';
    if (
      name === 'permissionMode' &&
      value !== null &&
      !(
        typeof value === 'string' &&
        ['read-only', 'guarded', 'workspace'].includes(value.trim().toLowerCase())
      )
    )
      return 'operator.admin';
  }
  return 'operator.write';
}

/** `sessions.delete` needs write with `archivedOnly: true`, admin otherwise (§2.6). */
export function deleteScope(params: SessionsDeleteParams): OperatorWriteScope {
  return params.archivedOnly ? 'operator.write' : 'operator.admin';
}
