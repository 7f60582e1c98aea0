/**
 * Tampering with a SQLite event log the way an attacker with the file would, for tests that
 * prove `ledger verify` finds it. Events live in `event_segments` rows (see
 * src/store/sqlite/event-log.ts), so one event is edited or cut out of its segment's JSON body.
 */
import type Database from 'better-sqlite3';

const POSITION = `(SELECT e.key FROM json_each(body) e WHERE e.value ->> 0 = @seq)`;

/** Replaces the data of event `seq` of a session with `dataJson`. */
export function editEventData(
  db: Database.Database,
  sessionId: string,
  seq: number,
  dataJson: string,
): void {
  const changed = db
    .prepare(
      `UPDATE event_segments SET body = json_replace(body, '$[' || ${POSITION} || '][6]', json(@data))
       WHERE session_id = @session AND @seq BETWEEN first_seq AND last_seq`,
    )
    .run({ session: sessionId, seq, data: dataJson }).changes;
  if (changed !== 1) throw new Error(`no event ${sessionId}#${seq} to edit`);
}

/** The stored data text of event `seq` of a session. */
export function eventDataText(db: Database.Database, sessionId: string, seq: number): string {
  const row = db
    .prepare('SELECT data FROM events WHERE session_id = ? AND seq = ?')
    .get(sessionId, seq) as { data: string } | undefined;
  if (!row) throw new Error(`no event ${sessionId}#${seq}`);
  return row.data;
}

/** Cuts event `seq` out of a session's log (its segment row goes when it was the only one). */
export function deleteEvent(db: Database.Database, sessionId: string, seq: number): void {
  const where = 'WHERE session_id = @session AND @seq BETWEEN first_seq AND last_seq';
  const params = { session: sessionId, seq };
  const only = db
    .prepare(`DELETE FROM event_segments ${where} AND json_array_length(body) = 1`)
    .run(params).changes;
  if (only === 1) return;
  const changed = db
    .prepare(
      `UPDATE event_segments SET body = json_remove(body, '$[' || ${POSITION} || ']') ${where}`,
    )
    .run(params).changes;
  if (changed !== 1) throw new Error(`no event ${sessionId}#${seq} to delete`);
}
