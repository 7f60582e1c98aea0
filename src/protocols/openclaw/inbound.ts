/**
 * Channel messages into chat turns (reference §6.3, §6.4): an inbound message on a group key
 * runs only when group activation lets it (`mention` by default: a mention, a reply to the
 * bot, a mention pattern or a command), otherwise it is ignored as context; an activated
 * message becomes a turn of its session — the same path as `chat.send`, deduplicated by the
 * channel's message id — and the run's reply goes back through the channel that brought it.
 */
import { isGroupKey, parseSessionKey, shouldActivate } from '../../core/openclaw/index.ts';
import type { Kernel } from '../../kernel/index.ts';
import type { InjectionScore } from '../../security/guards/prompt-injection.ts';
import type { ProcessRecord } from '../../store/index.ts';
import {
  type ChannelRegistry,
  type InboundMessage,
  type InboundOutcome,
  replyFor,
} from '../channels/index.ts';
import type { Dedupe } from './dedupe.ts';
import { replyText } from './event-bridge.ts';
import { findSession } from './session-records.ts';
import { claimTurn } from './turn-claim.ts';
import type { Turns } from './turns.ts';

export interface InboundOptions {
  readonly kernel: () => Kernel;
  readonly turns: Turns;
  readonly dedupe: Dedupe;
  readonly queueMode: () => 'followup' | 'steer' | 'collect' | 'interrupt';
}

/** Where a channel turn's reply goes: the driver and the message it answers. */
interface ReplyRoute {
  readonly driver: string;
  readonly inbound: InboundMessage;
}

/** The sink of driver `driverId` (`<kind>:<name>`): replies go back through that driver. */
export function inboundSink(options: InboundOptions, driverId: string) {
  return async (msg: InboundMessage, guard: InjectionScore): Promise<InboundOutcome> => {
    const kernel = options.kernel();
    const key = msg.sessionKey;
    const session = await findSession(kernel, key);
    if (session?.entry.sendPolicy === 'deny')
      return { status: 'ignored', reason: 'send blocked by session policy', sessionKey: key };
    const parsed = parseSessionKey(key);
    const decision = shouldActivate({
      activation: session?.entry.groupActivation ?? null,
      isGroup: isGroupKey(parsed) || msg.chatType === 'group',
      text: msg.text,
      mentioned: msg.mentioned,
      replyToBot: msg.replyToBot,
    });
    if (!decision.activate)
      return { status: 'ignored', reason: `not activated (${decision.reason})`, sessionKey: key };
    const runId = `inbound:${msg.channel}:${msg.accountId ?? ''}:${msg.messageId}`;
    const claim = await claimTurn(options.dedupe, options.turns, `chat:${runId}`, {
      ts: Date.now(),
      runId,
      pid: null,
      sessionKey: key,
    });
    if (!claim.first) return { status: 'accepted', runId, sessionKey: key };
    const route: ReplyRoute = { driver: driverId, inbound: msg };
    try {
      await options.turns.submit({
        key,
        runId,
        message: msg.text,
        mode: options.queueMode(),
        origin: {
          kind: 'channel',
          user: `channel:${msg.channel}:${msg.from}`,
          channel: msg.channel,
          ...(msg.threadId === undefined ? {} : { threadId: msg.threadId }),
          replyTo: { ...route, guard: { verdict: guard.verdict, score: guard.score } },
        },
      });
    } catch (error) {
      await options.dedupe.release(`chat:${runId}`).catch(() => undefined);
      throw error;
    }
    return { status: 'accepted', runId, sessionKey: key };
  };
}

/** Sends a finished channel turn's reply back through its driver (no reply for no text). */
export async function deliverReply(
  channels: ChannelRegistry | null,
  run: ProcessRecord,
): Promise<boolean> {
  const meta = run.envelope.metadata.openclaw as { replyTo?: ReplyRoute } | undefined;
  const route = meta?.replyTo;
  if (!channels || !route?.inbound) return false;
  const text = replyText(run).trim();
  if (text === '' || text === 'NO_REPLY' || run.terminal_reason !== 'completed') return false;
  const at = route.driver.indexOf(':');
  const driver = channels.find(route.driver.slice(0, at), route.driver.slice(at + 1));
  if (!driver) return false;
  await driver.send(replyFor(route.inbound, text));
  return true;
}
