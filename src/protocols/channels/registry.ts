/**
 * Channel capability descriptors, the registry of configured channel drivers, and the session
 * key of an inbound message (reference/openclaw-gateway-v4.md §6.1).
 *
 * Only the generic `webhook` channel is implemented. `whatsapp`, `telegram`, `slack` and
 * `discord` are descriptors only — what those channels can carry, recorded so routing and
 * splitting can be written against them — and there is no driver for them: the registry
 * refuses them. Reach those networks through a bridge that posts to a webhook channel.
 */
import { deepFreeze, WardenError } from '../../core/index.ts';
import {
  CHANNEL_KINDS,
  type ChannelCapabilities,
  type ChannelDriver,
  type ChannelKind,
  type DmScope,
  type InboundMessage,
  type InboundSink,
  type OutboundMessage,
} from './types.ts';

/** A channel kind as Warden knows it. */
export interface ChannelDescriptor {
  readonly kind: ChannelKind;
  readonly label: string;
  /** True only when Warden ships a working driver (today: `webhook`). */
  readonly implemented: boolean;
  /** One line for `warden` output and docs: what works, what does not. */
  readonly summary: string;
  readonly capabilities: ChannelCapabilities;
}

const MiB = 1024 * 1024;

/** Text limit of a webhook channel unless configured (`max_text_chars`). */
export const WEBHOOK_DEFAULT_MAX_TEXT_CHARS = 4096;

/** A kind Warden knows the limits of but has no driver for. */
function descriptorOnly(
  kind: ChannelKind,
  label: string,
  capabilities: ChannelCapabilities,
): ChannelDescriptor {
  return {
    kind,
    label,
    implemented: false,
    summary: 'descriptor only: no driver yet (use a bridge that posts to a webhook channel)',
    capabilities,
  };
}

/**
 * Every channel kind. Limits are the platforms' documented bot limits (mid-2026): Telegram 4096
 * characters and 50 MB uploads, Discord 2000 and 10 MiB, Slack 40,000 (`chat.postMessage`
 * truncates beyond), WhatsApp Cloud API 4096 and 16 MB media.
 */
export const CHANNEL_DESCRIPTORS: Readonly<Record<ChannelKind, ChannelDescriptor>> = deepFreeze({
  whatsapp: descriptorOnly('whatsapp', 'WhatsApp', {
    text: true,
    media: true,
    threads: false,
    reactions: true,
    groups: true,
    mentions: true,
    edits: false,
    deletes: false,
    typing: false,
    markup: 'markdown',
    maxTextChars: 4096,
    maxMediaBytes: 16 * MiB,
    threadSegment: 'thread',
  }),
  telegram: descriptorOnly('telegram', 'Telegram', {
    text: true,
    media: true,
    threads: true,
    reactions: true,
    groups: true,
    mentions: true,
    edits: true,
    deletes: true,
    typing: true,
    markup: 'html',
    maxTextChars: 4096,
    maxMediaBytes: 50 * MiB,
    // Forum topics: `agent:main:telegram:group:-100123:topic:42` (§6.1).
    threadSegment: 'topic',
  }),
  slack: descriptorOnly('slack', 'Slack', {
    text: true,
    media: true,
    threads: true,
    reactions: true,
    groups: true,
    mentions: true,
    edits: true,
    deletes: true,
    typing: false,
    markup: 'mrkdwn',
    maxTextChars: 40_000,
    maxMediaBytes: 1024 * MiB,
    threadSegment: 'thread',
  }),
  discord: descriptorOnly('discord', 'Discord', {
    text: true,
    media: true,
    threads: true,
    reactions: true,
    groups: true,
    mentions: true,
    edits: true,
    deletes: true,
    typing: true,
    markup: 'markdown',
    maxTextChars: 2000,
    maxMediaBytes: 10 * MiB,
    threadSegment: 'thread',
  }),
  webhook: {
    kind: 'webhook',
    label: 'Generic webhook',
    implemented: true,
    summary:
      'implemented: signed JSON in over HTTP, signed JSON replies to a callback URL (text only)',
    capabilities: {
      text: true,
      media: false,
      threads: true,
      reactions: false,
      groups: true,
      // Whatever the sender reports in `mentioned` / `replyToBot`.
      mentions: true,
      edits: false,
      deletes: false,
      typing: false,
      markup: 'none',
      maxTextChars: WEBHOOK_DEFAULT_MAX_TEXT_CHARS,
      maxMediaBytes: 0,
      threadSegment: 'thread',
    },
  },
});

/**
 * The descriptor of `kind`.
 *
 * @throws WardenError INVALID_PARAMS for a kind Warden does not know.
 */
export function channelDescriptor(kind: string): ChannelDescriptor {
  if (!(CHANNEL_KINDS as readonly string[]).includes(kind)) {
    throw new WardenError(
      'INVALID_PARAMS',
      `unknown channel '${kind}': expected one of ${CHANNEL_KINDS.join(', ')}`,
      { details: { channel: kind, known: [...CHANNEL_KINDS] } },
    );
  }
  return CHANNEL_DESCRIPTORS[kind as ChannelKind];
}

/**
 * The descriptor of `kind`, which must have a working driver.
 *
 * @throws WardenError INVALID_PARAMS for an unknown kind, or one that is a descriptor only.
 */
export function requireImplemented(kind: string): ChannelDescriptor {
  const descriptor = channelDescriptor(kind);
  if (!descriptor.implemented) {
    const working = CHANNEL_KINDS.filter((k) => CHANNEL_DESCRIPTORS[k].implemented);
    throw new WardenError(
      'INVALID_PARAMS',
      `channel '${kind}' is not implemented: Warden has its capability descriptor but no driver; use the ${working.join(', ')} channel (a bridge posting to it) instead`,
      { details: { channel: kind, implemented: working } },
    );
  }
  return descriptor;
}

/**
 * The configured channel drivers of one daemon, by id. Registration refuses unknown and
 * unimplemented kinds, so nothing presents a descriptor-only channel as working.
 */
export class ChannelRegistry {
  readonly #drivers = new Map<string, ChannelDriver>();

  /**
   * Adds a driver (not started).
   *
   * @throws WardenError INVALID_PARAMS when its kind is unknown or not implemented;
   *   ALREADY_EXISTS when a driver with its id is registered.
   */
  register(driver: ChannelDriver): void {
    requireImplemented(driver.kind);
    if (this.#drivers.has(driver.id)) {
      throw new WardenError(
        'ALREADY_EXISTS',
        `channel '${driver.id}' is registered already; give each channel a unique name`,
        { details: { channel: driver.id } },
      );
    }
    this.#drivers.set(driver.id, driver);
  }

  /**
   * The driver with `id` (`<kind>:<name>`).
   *
   * @throws WardenError NOT_FOUND when none is registered.
   */
  get(id: string): ChannelDriver {
    const driver = this.#drivers.get(id);
    if (driver === undefined) throw notFound(id);
    return driver;
  }

  /** The driver of `kind` named `name`, or undefined (for HTTP routing: answer 404 then). */
  find(kind: string, name: string): ChannelDriver | undefined {
    return this.#drivers.get(`${kind}:${name}`);
  }

  list(): ChannelDriver[] {
    return [...this.#drivers.values()];
  }

  /** Starts every driver with `sink`; on a failure stops those started and rethrows. */
  async startAll(sink: InboundSink): Promise<void> {
    const started: ChannelDriver[] = [];
    try {
      for (const driver of this.#drivers.values()) {
        await driver.start(sink);
        started.push(driver);
      }
    } catch (error) {
      await Promise.allSettled(started.map((d) => d.stop()));
      throw error;
    }
  }

  /** Stops every driver (each waits for its in-flight messages); never rejects. */
  async stopAll(): Promise<void> {
    await Promise.allSettled([...this.#drivers.values()].map((d) => d.stop()));
  }
}

function notFound(id: string): WardenError {
  return new WardenError('NOT_FOUND', `channel '${id}' does not exist; check the channel name`, {
    details: { what: 'channel', id },
  });
}

/** Options of {@link sessionKeyFor}. */
export interface SessionKeyOptions {
  /** The agent id (`/^[a-z0-9][a-z0-9_-]{0,63}$/i`). */
  readonly agentId: string;
  /** How direct messages map (§6.1). */
  readonly dmScope: DmScope;
  /** The main session's key. @default 'main' */
  readonly mainKey?: string;
}

/** The fields of a message that decide its session. */
export type SessionKeySource = Pick<
  InboundMessage,
  'channel' | 'accountId' | 'from' | 'chatType' | 'groupId' | 'threadId'
>;

/** Agent ids (§6.1). */
export const AGENT_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/i;
/** Account used by `per-account-channel-peer` when the message names none (OpenClaw's default). */
export const DEFAULT_ACCOUNT_ID = 'default';

/**
 * The canonical session key of an inbound message (reference §6.1):
 *
 * - direct, `dmScope` `main`: `agent:<agent>:<mainKey>`; `per-peer`: `agent:<agent>:direct:<from>`;
 *   `per-channel-peer`: `agent:<agent>:<ch>:direct:<from>`; `per-account-channel-peer`:
 *   `agent:<agent>:<ch>:<account>:direct:<from>` (account `default` when unset).
 * - group: `agent:<agent>:<ch>:group:<groupId>`, then `:thread:<threadId>` when threaded
 *   (`:topic:` on Telegram, from the descriptor's `threadSegment`).
 *
 * Kept simple, on purpose: the whole key is trimmed per part and lower-cased (OpenClaw keeps
 * the case of `signal:` group ids and `matrix:` room ids; Warden has neither channel); a thread
 * id in a direct message does not change the key; groups always get their own session
 * (`groupScope: per-group`), and `identityLinks`, `session.scope: global`, `:channel:` and
 * `:room:` forms are not produced.
 *
 * @throws WardenError INVALID_PARAMS for an invalid agent id, an empty part, or a group
 *   message without `groupId`.
 */
export function sessionKeyFor(msg: SessionKeySource, options: SessionKeyOptions): string {
  if (!AGENT_ID_PATTERN.test(options.agentId)) {
    throw keyError(
      'agentId',
      `expected an agent id matching ${String(AGENT_ID_PATTERN)}`,
      options.agentId,
    );
  }
  const agent = `agent:${options.agentId}`;
  const ch = part('channel', msg.channel);
  if (msg.chatType === 'group') {
    const base = `${agent}:${ch}:group:${part('groupId', msg.groupId)}`;
    if (msg.threadId === undefined) return base.toLowerCase();
    const segment = CHANNEL_DESCRIPTORS[msg.channel].capabilities.threadSegment;
    return `${base}:${segment}:${part('threadId', msg.threadId)}`.toLowerCase();
  }
  const peer = part('from', msg.from);
  switch (options.dmScope) {
    case 'main':
      return `${agent}:${part('mainKey', options.mainKey ?? 'main')}`.toLowerCase();
    case 'per-peer':
      return `${agent}:direct:${peer}`.toLowerCase();
    case 'per-channel-peer':
      return `${agent}:${ch}:direct:${peer}`.toLowerCase();
    case 'per-account-channel-peer': {
      const account = part('accountId', msg.accountId ?? DEFAULT_ACCOUNT_ID);
      return `${agent}:${ch}:${account}:direct:${peer}`.toLowerCase();
    }
    default: {
      const never: never = options.dmScope;
      throw keyError(
        'dmScope',
        'expected main, per-peer, per-channel-peer or per-account-channel-peer',
        never,
      );
    }
  }
}

/** A key part: trimmed and non-empty. */
function part(name: string, value: string | undefined): string {
  const trimmed = typeof value === 'string' ? value.trim() : '';
  if (trimmed === '') throw keyError(name, 'expected a non-empty string', value);
  return trimmed;
}

function keyError(name: string, expected: string, got: unknown): WardenError {
  const shown = typeof got === 'string' ? JSON.stringify(got.slice(0, 40)) : String(got);
  return new WardenError('INVALID_PARAMS', `sessionKeyFor: ${name}: ${expected} (got ${shown})`, {
    details: { where: 'sessionKeyFor', path: name },
  });
}

/** The reply to `inbound`: to its group (or sender), in its thread, to its callback if any. */
export function replyFor(inbound: InboundMessage, text: string): OutboundMessage {
  return {
    channel: inbound.channel,
    to:
      inbound.chatType === 'group' && inbound.groupId !== undefined
        ? inbound.groupId
        : inbound.from,
    text,
    replyToId: inbound.messageId,
    ...(inbound.threadId === undefined ? {} : { threadId: inbound.threadId }),
    ...(inbound.replyTo === undefined ? {} : { replyTo: { url: inbound.replyTo.url } }),
  };
}
