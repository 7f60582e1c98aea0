/**
 * Claiming a message's `idempotencyKey` before its turn is submitted — one rule for every way
 * a message comes in (`chat.send`, `agent`, channel inbound). The claim and the queue's offer
 * are two commits, so a process killed between them leaves a claim with no turn behind it:
 * every retry would see it `pending` and the message would never run. A claim is therefore
 * taken over by the next request with the same key when its claimer is gone (dead on this
 * host, or older than `STARTING_GRACE_MS`) and the gateway has no trace of its turn.
 */
import type { Claim, Dedupe, DedupeEntry } from './dedupe.ts';
import { abandonedBy, type Turns } from './turns.ts';

/** The pending claim a request makes: who claims is filled in from `turns`. */
export type TurnClaim = Omit<DedupeEntry, 'state' | 'owner'>;

/**
 * Claims `key` for the request `entry`, or takes over an abandoned claim of an earlier one;
 * `first` says whether this request owns the key now (and must submit the turn).
 */
export async function claimTurn(
  dedupe: Dedupe,
  turns: Turns,
  key: string,
  entry: TurnClaim,
): Promise<Claim> {
  const claimed: DedupeEntry = { ...entry, state: 'pending', owner: turns.owner };
  const claim = await dedupe.claim(key, claimed);
  if (claim.first || !(await abandoned(turns, claim.entry, claimed.ts))) return claim;
  return (await dedupe.takeOver(key, claim.version, claimed))
    ? { first: true, version: claim.version + 1 }
    : // Someone else moved it on meanwhile: answer from what it is now.
      dedupe.claim(key, claimed);
}

async function abandoned(turns: Turns, entry: DedupeEntry, now: number): Promise<boolean> {
  if (entry.state !== 'pending' || entry.owner === undefined) return false;
  if (!abandonedBy(entry.owner, entry.ts, now)) return false;
  return !(await turns.known(entry.sessionKey, entry.runId));
}
