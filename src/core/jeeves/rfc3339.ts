/**
 * RFC 3339 timestamps of the state dict. Output is Go's `time.RFC3339` in UTC: whole seconds
 * and `Z` (`2026-01-02T03:04:05Z`), so sub-second precision does not survive a round trip, as
 * with Go. Input also takes fractional seconds, any offset, and no offset at all (read as UTC:
 * Python's naive `isoformat()`).
 */

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})?$/;

/** Epoch milliseconds as Go's RFC 3339 (seconds, UTC); null for a value that is not a time. */
export function formatRfc3339(ms: number | null | undefined): string | null {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return null;
  const date = new Date(Math.floor(ms / 1000) * 1000);
  if (Number.isNaN(date.getTime())) return null;
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Epoch milliseconds of an RFC 3339 time, or null when `text` is not one. */
export function parseRfc3339(text: string): number | null {
  const m = RFC3339.exec(text.trim());
  if (!m) return null;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const ms = Number(((m[7] ?? '') + '000').slice(0, 3));
  const local = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  // Date.UTC rolls over (Feb 30 → Mar 2); a real calendar date reads back unchanged.
  const check = new Date(local);
  if (
    check.getUTCFullYear() !== year ||
    check.getUTCMonth() !== month - 1 ||
    check.getUTCDate() !== day ||
    hour > 23 ||
    minute > 59 ||
    second > 60
  ) {
    return null;
  }
  const zone = m[8];
  if (zone === undefined || zone === 'Z' || zone === 'z') return local;
  const sign = zone.startsWith('-') ? -1 : 1;
  const offsetMinutes = Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6));
  return local - sign * offsetMinutes * 60_000;
}
