/** Who is at the terminal, for the `resolver` / `by` fields the CLI records. */
import { userInfo } from 'node:os';

/** The login name: $USER, $LOGNAME, or the account of this process (never a made-up name). */
export function osUser(): string {
  const fromEnv = process.env.USER || process.env.LOGNAME;
  if (fromEnv) return fromEnv;
  try {
    return userInfo().username;
  } catch {
    // No passwd entry for this uid (some containers): name the uid instead.
    return `uid-${process.getuid?.() ?? 'unknown'}`;
  }
}
