/**
 * OpenClaw sessions as Warden sessions. The canonical OpenClaw key is the Warden session key
 * when it fits Warden's key rules (1–128 of letters, digits, `_ . : -`), else a stable hash of
 * it; the OpenClaw fields live in `settings.openclaw` (the entry) and `settings.openclaw_key`.
 * Updates compare-and-set on the session's version and retry on a concurrent change, so two
 * clients patching one session never lose a write.
 */
import { createHash, randomUUID } from 'node:crypto';

import { isWardenError, WardenError } from '../../core/index.ts';
import {
  newOpenClawEntry,
  type OpenClawEntry,
  openClawEntrySchema,
  readOpenClawEntry,
} from '../../core/openclaw/index.ts';
import type { Kernel } from '../../kernel/index.ts';
import type { SessionRecord } from '../../store/index.ts';

const WARDEN_KEY = /^[A-Za-z0-9_.:-]{1,128}$/;

export function wardenSessionKey(key: string): string {
  return WARDEN_KEY.test(key)
    ? key
    : `openclaw:${createHash('sha256').update(key).digest('hex').slice(0, 40)}`;
}

export interface GatewaySession {
  readonly session: SessionRecord;
  /** The canonical OpenClaw key. */
  readonly key: string;
  readonly entry: OpenClawEntry;
}

/** The gateway view of any Warden session (one made elsewhere gets a default entry). */
export function gatewaySession(session: SessionRecord): GatewaySession {
  const stored = session.settings.openclaw_key;
  const key = typeof stored === 'string' ? stored : session.key;
  let entry: OpenClawEntry | undefined;
  try {
    entry = readOpenClawEntry(session.settings);
  } catch {
    entry = undefined;
  }
  return {
    session,
    key,
    entry: entry ?? openClawEntrySchema.parse({ sessionId: session.id, lifecycleRevision: '0' }),
  };
}

export async function findSession(kernel: Kernel, key: string): Promise<GatewaySession | null> {
  const session = await kernel.store.getSessionByKey(wardenSessionKey(key));
  return session ? gatewaySession(session) : null;
}

export async function mustFindSession(kernel: Kernel, key: string): Promise<GatewaySession> {
  const found = await findSession(kernel, key);
  if (!found)
    throw new WardenError('NOT_FOUND', `No session found: ${key}`, {
      details: { what: 'session', key },
    });
  return found;
}

/** The session of `key`, created (with a fresh entry) when missing. */
export async function ensureSession(
  kernel: Kernel,
  key: string,
  init: { agentId?: string; channel?: string; chatType?: string } = {},
): Promise<GatewaySession> {
  const found = await findSession(kernel, key);
  if (found && found.session.settings.openclaw !== undefined) return found;
  const entry = newOpenClawEntry({ key, sessionId: randomUUID(), ...init });
  if (found) return updateEntry(kernel, key, () => entry);
  const session = await kernel.sessions.ensure(wardenSessionKey(key), {
    openclaw: entry,
    openclaw_key: key,
  });
  return gatewaySession(session);
}

/**
 * Applies `change` to the entry of `key` with compare-and-set, re-reading and retrying when
 * another writer got there first. NOT_FOUND when the session does not exist.
 */
export async function updateEntry(
  kernel: Kernel,
  key: string,
  change: (entry: OpenClawEntry, current: GatewaySession) => OpenClawEntry,
  extra: Record<string, unknown> = {},
): Promise<GatewaySession> {
  for (let attempt = 0; ; attempt++) {
    const current = await mustFindSession(kernel, key);
    const entry = change(current.entry, current);
    try {
      const session = await kernel.sessions.patch(
        current.session.id,
        { ...current.session.settings, ...extra, openclaw: entry, openclaw_key: key },
        current.session.version ?? 0,
      );
      return gatewaySession(session);
    } catch (error) {
      if (!isWardenError(error) || error.code !== 'CONFLICT' || attempt >= 10) throw error;
    }
  }
}

/** Every session but the kernel's own `system` session. */
export async function listGatewaySessions(kernel: Kernel): Promise<GatewaySession[]> {
  const sessions = await kernel.store.listSessions();
  return sessions.filter((s) => s.key !== 'system').map(gatewaySession);
}

/** The Warden model a session's entry names (`openai/gpt-4o` → `openai:gpt-4o`), if any. */
export function wardenModel(entry: OpenClawEntry): string | undefined {
  if (entry.model === undefined) return undefined;
  const provider = entry.modelProvider;
  return provider && provider !== 'scripted' ? `${provider}:${entry.model}` : entry.model;
}
