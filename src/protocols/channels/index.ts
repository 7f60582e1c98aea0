/** Channel drivers: capability descriptors, the registry and the generic webhook channel. */
export {
  INBOUND_DEDUPE_MAX,
  INBOUND_DEDUPE_TTL_MS,
  InboundDedupe,
  type InboundDedupeOptions,
} from './inbound-dedupe.ts';
export {
  AGENT_ID_PATTERN,
  CHANNEL_DESCRIPTORS,
  type ChannelDescriptor,
  channelDescriptor,
  ChannelRegistry,
  DEFAULT_ACCOUNT_ID,
  replyFor,
  requireImplemented,
  sessionKeyFor,
  type SessionKeyOptions,
  type SessionKeySource,
  WEBHOOK_DEFAULT_MAX_TEXT_CHARS,
} from './registry.ts';
export {
  SIGNATURE_HEADER,
  signWebhookPayload,
  TIMESTAMP_HEADER,
  verifyWebhookSignature,
} from './signature.ts';
export { MIN_SPLIT_CHARS, splitText } from './text-split.ts';
export {
  CHANNEL_KINDS,
  type ChannelCapabilities,
  type ChannelDriver,
  type ChannelKind,
  CHAT_TYPES,
  type ChatType,
  DM_SCOPES,
  type DmScope,
  type InboundMessage,
  type InboundOutcome,
  type InboundSink,
  type OutboundMessage,
} from './types.ts';
export {
  MIN_WEBHOOK_SECRET_CHARS,
  PRIVATE_NETWORK_CIDRS,
  WebhookChannel,
  type WebhookChannelConfig,
  webhookChannelConfigSchema,
  type WebhookChannelOptions,
  webhookOptionsFromConfig,
} from './webhook.ts';
