/**
 * Channel drivers (issue 14; the "trait-based channel adapter scaffold" of the OpenClaw Rust
 * rewrite's Phase 3): the port between a chat channel (a webhook, later Telegram, Slack…) and
 * the gateway. A driver turns what its channel receives into {@link InboundMessage}s handed to
 * an {@link InboundSink}, and delivers {@link OutboundMessage}s back.
 *
 * Outside this contract: routing policy (group activation, queue modes, `sendPolicy`), agent
 * runs and transcripts. The sink owns those; a driver only authenticates, validates, dedupes,
 * scores and maps a message to its session key.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

import type { InjectionScore } from '../../security/guards/prompt-injection.ts';

/** The channel kinds Warden knows; `webhook` is the generic fallback (the only one implemented). */
export const CHANNEL_KINDS = ['whatsapp', 'telegram', 'slack', 'discord', 'webhook'] as const;
export type ChannelKind = (typeof CHANNEL_KINDS)[number];

/** How direct messages map onto sessions (reference §6.1 `session.dmScope`). */
export const DM_SCOPES = [
  'main',
  'per-peer',
  'per-channel-peer',
  'per-account-channel-peer',
] as const;
export type DmScope = (typeof DM_SCOPES)[number];

export const CHAT_TYPES = ['direct', 'group'] as const;
export type ChatType = (typeof CHAT_TYPES)[number];

/** What a channel can carry. Descriptors only describe; they do not make a channel work. */
export interface ChannelCapabilities {
  /** Plain text messages. */
  readonly text: boolean;
  /** Images, files, audio or video attachments. */
  readonly media: boolean;
  /** Replies inside a thread (Slack threads, Discord threads, Telegram forum topics). */
  readonly threads: boolean;
  readonly reactions: boolean;
  /** Group chats or channels with several people. */
  readonly groups: boolean;
  /** Mentions of the bot that the channel reports as such. */
  readonly mentions: boolean;
  /** The bot can edit a message it sent. */
  readonly edits: boolean;
  /** The bot can delete a message it sent. */
  readonly deletes: boolean;
  /** A "typing…" indicator. */
  readonly typing: boolean;
  /** Markup the channel renders in text. */
  readonly markup: 'none' | 'markdown' | 'mrkdwn' | 'html';
  /** Longest text of one message, in UTF-16 code units; longer replies are split. */
  readonly maxTextChars: number;
  /** Largest attachment the bot may send, in bytes; 0 when `media` is false. */
  readonly maxMediaBytes: number;
  /** The session-key segment a thread id gets (`thread`, or `topic` for Telegram forum topics). */
  readonly threadSegment: 'thread' | 'topic';
}

/** One message received from a channel, after authentication and validation. */
export interface InboundMessage {
  readonly channel: ChannelKind;
  /** The channel account (bot or workspace) it arrived on; webhook: the body's, else the driver name. */
  readonly accountId?: string;
  /** The sender's id on the channel. */
  readonly from: string;
  readonly chatType: ChatType;
  /** Set when `chatType` is `group`. */
  readonly groupId?: string;
  readonly threadId?: string;
  readonly text: string;
  /** The channel says the message mentions the bot (group activation `mention`, reference §6.3). */
  readonly mentioned?: boolean;
  /** The message replies to one of the bot's messages (also counts as a mention, §6.3). */
  readonly replyToBot?: boolean;
  /** The channel's message id; inbound dedupe uses it (§6.4). */
  readonly messageId: string;
  /** Where replies go when the sender named a callback. */
  readonly replyTo?: { readonly url: string };
  /** When the driver received it, ms since the epoch. */
  readonly receivedAt: number;
  /** The agent the driver routes to (its `agent_id`). */
  readonly agentId: string;
  /** The canonical session key, from {@link sessionKeyFor} with the driver's dmScope. */
  readonly sessionKey: string;
}

/** One message to deliver on a channel. */
export interface OutboundMessage {
  readonly channel: ChannelKind;
  /** The peer (direct) or group id to deliver to. */
  readonly to: string;
  readonly text: string;
  readonly threadId?: string;
  /** The channel message id this replies to. */
  readonly replyToId?: string;
  /** The inbound callback; webhook: used instead of the configured `reply_url`. */
  readonly replyTo?: { readonly url: string };
}

/** What the sink did with a message; the webhook answers it as the 202 body. */
export type InboundOutcome =
  | { readonly status: 'accepted'; readonly runId: string; readonly sessionKey: string }
  | { readonly status: 'ignored'; readonly reason: string; readonly sessionKey?: string }
  | { readonly status: 'blocked'; readonly reason: string };

/**
 * Receives inbound messages (the daemon maps it onto `chat.send`). `guard` is the
 * prompt-injection score of `msg.text`: never `block` (drivers answer those themselves), so the
 * sink decides what `review` means. A sink that throws makes the driver answer the error and
 * forget the message id, so the sender may retry.
 */
export type InboundSink = (msg: InboundMessage, guard: InjectionScore) => Promise<InboundOutcome>;

/** One configured channel connection. */
export interface ChannelDriver {
  /** Unique in a registry: `<kind>:<name>`, e.g. `webhook:crm`. */
  readonly id: string;
  readonly kind: ChannelKind;
  /** The configured name (a slug). */
  readonly name: string;
  readonly capabilities: ChannelCapabilities;
  /** Begins handing inbound messages to `sink`. */
  start(sink: InboundSink): Promise<void>;
  /** Refuses new inbound messages and waits for those in flight. */
  stop(): Promise<void>;
  /** Delivers a message; rejects with a WardenError when it could not. */
  send(msg: OutboundMessage): Promise<void>;
  /** Drivers that receive over HTTP (webhook): the request handler the daemon routes to. */
  readonly handle?: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
}
