/**
 * SQLite schema migrations: forward-only, each checksummed (sha256 of its SQL). The runner
 * refuses a database whose schema is newer than the newest migration here, and one whose
 * applied migrations differ from these. Never edit an applied migration; add a new one.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const SQLITE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'init',
    sql: `
CREATE TABLE sessions (
  id TEXT PRIMARY KEY,
  key TEXT NOT NULL UNIQUE,
  settings TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  last_seq INTEGER NOT NULL,
  last_hash TEXT NOT NULL
) STRICT;

CREATE TABLE processes (
  pid TEXT PRIMARY KEY,
  session_id TEXT NOT NULL REFERENCES sessions(id),
  user_id TEXT NOT NULL,
  parent_pid TEXT,
  workflow_name TEXT NOT NULL,
  workflow TEXT NOT NULL,
  workflow_hash TEXT NOT NULL,
  source TEXT,
  state TEXT NOT NULL CHECK (state IN ('new','ready','running','waiting','blocked','terminated','zombie')),
  priority TEXT NOT NULL,
  quota TEXT NOT NULL,
  usage TEXT NOT NULL,
  envelope TEXT NOT NULL,
  current_stage TEXT NOT NULL,
  terminal_reason TEXT,
  terminal_message TEXT,
  trace_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  updated_at INTEGER NOT NULL,
  completed_at INTEGER
) STRICT;
CREATE INDEX processes_state ON processes(state, created_at);
CREATE INDEX processes_session ON processes(session_id, created_at);

CREATE TABLE tasks (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('agent_step','job','plan_task')),
  name TEXT NOT NULL,
  lane TEXT NOT NULL,
  session_id TEXT NOT NULL REFERENCES sessions(id),
  process_id TEXT,
  payload TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('queued','running','succeeded','failed','dead','canceled')),
  priority INTEGER NOT NULL,
  sort_key INTEGER NOT NULL,
  available_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  max_attempts INTEGER NOT NULL,
  lease_owner TEXT,
  lease_token TEXT,
  lease_expires_at INTEGER,
  idempotency_key TEXT,
  last_error TEXT,
  result TEXT,
  trace_id TEXT NOT NULL,
  options TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX tasks_due ON tasks(lane, sort_key) WHERE state = 'queued';
CREATE INDEX tasks_lease ON tasks(lease_expires_at) WHERE state = 'running';
CREATE INDEX tasks_process ON tasks(process_id) WHERE process_id IS NOT NULL;
CREATE INDEX tasks_state ON tasks(state, lane);
CREATE UNIQUE INDEX tasks_idempotency ON tasks(idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE attempts (
  task_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  lease_token TEXT NOT NULL,
  worker_id TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  ended_at INTEGER,
  outcome TEXT,
  error TEXT,
  PRIMARY KEY (task_id, attempt)
) STRICT, WITHOUT ROWID;

CREATE TABLE interrupts (
  id TEXT PRIMARY KEY,
  session_id TEXT NOT NULL REFERENCES sessions(id),
  process_id TEXT,
  kind TEXT NOT NULL,
  stage TEXT,
  step INTEGER,
  prompt TEXT NOT NULL,
  data TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending','resolved','expired','cancelled')),
  response TEXT,
  resolver TEXT,
  trace_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER,
  resolved_at INTEGER
) STRICT;
CREATE INDEX interrupts_status ON interrupts(status, expires_at);
CREATE INDEX interrupts_process ON interrupts(process_id, created_at);

CREATE TABLE events (
  session_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  type TEXT NOT NULL,
  ts INTEGER NOT NULL,
  trace_id TEXT NOT NULL,
  process_id TEXT,
  task_id TEXT,
  attempt INTEGER,
  data TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL,
  PRIMARY KEY (session_id, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX events_process ON events(process_id, seq) WHERE process_id IS NOT NULL;

CREATE TABLE effects (
  idempotency_key TEXT PRIMARY KEY,
  tool TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending','done','failed')),
  result_hash TEXT,
  result TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
`,
  },
  {
    version: 2,
    name: 'queue',
    sql: `
CREATE TABLE tasks_v2 (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('agent_step','job','plan_task')),
  name TEXT NOT NULL,
  lane TEXT NOT NULL,
  session_id TEXT NOT NULL REFERENCES sessions(id),
  process_id TEXT,
  payload TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('queued','running','succeeded','failed','dead','canceled')),
  priority INTEGER NOT NULL,
  sort_key INTEGER NOT NULL,
  available_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  max_attempts INTEGER NOT NULL,
  lease_owner TEXT,
  lease_token TEXT,
  lease_expires_at INTEGER,
  claimed_at INTEGER,
  idempotency_key TEXT,
  last_error TEXT,
  result TEXT,
  trace_id TEXT NOT NULL,
  options TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO tasks_v2 (id, kind, name, lane, session_id, process_id, payload, state, priority, sort_key,
  available_at, attempts, max_attempts, lease_owner, lease_token, lease_expires_at, claimed_at, idempotency_key,
  last_error, result, trace_id, options, created_at, updated_at)
SELECT id, kind, name, lane, session_id, process_id, payload, state, priority, sort_key, available_at, attempts,
  max_attempts, lease_owner, lease_token, lease_expires_at, NULL, idempotency_key, last_error, result, trace_id,
  options, created_at, updated_at FROM tasks;
DROP TABLE tasks;
ALTER TABLE tasks_v2 RENAME TO tasks;
CREATE INDEX tasks_due ON tasks(lane, sort_key) WHERE state = 'queued';
CREATE INDEX tasks_lease ON tasks(lease_expires_at) WHERE state = 'running';
CREATE INDEX tasks_process ON tasks(process_id) WHERE process_id IS NOT NULL;
CREATE UNIQUE INDEX tasks_idempotency ON tasks(idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX tasks_dead ON tasks(lane, updated_at) WHERE state = 'dead';

-- Per (lane, session, priority) virtual clocks for fair queueing across sessions (see submitTasks).
CREATE TABLE fair_clock (
  lane TEXT NOT NULL,
  session_id TEXT NOT NULL,
  rank INTEGER NOT NULL,
  last_key INTEGER NOT NULL,
  PRIMARY KEY (lane, session_id, rank)
) STRICT, WITHOUT ROWID;

CREATE TABLE schedules (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL CHECK (kind IN ('cron', 'interval')),
  expr TEXT NOT NULL,
  job TEXT NOT NULL,
  lane TEXT NOT NULL,
  payload TEXT NOT NULL,
  options TEXT NOT NULL,
  enabled INTEGER NOT NULL,
  next_run_at INTEGER NOT NULL,
  last_run_at INTEGER,
  last_task_id TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX schedules_due ON schedules(next_run_at) WHERE enabled = 1;
`,
  },
  {
    version: 3,
    name: 'spine',
    sql: `
-- Effect journal: a pending record names the attempt (lease token) that owns it; every journal
-- transition compares status and owner. task/session say where its events go.
ALTER TABLE effects ADD COLUMN owner TEXT;
ALTER TABLE effects ADD COLUMN owner_worker TEXT;
ALTER TABLE effects ADD COLUMN task_id TEXT;
ALTER TABLE effects ADD COLUMN session_id TEXT;
ALTER TABLE effects ADD COLUMN error TEXT;
CREATE INDEX effects_finished ON effects(updated_at) WHERE status <> 'pending';

-- Schedules that cannot fire back off and say why, without blocking the others.
ALTER TABLE schedules ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE schedules ADD COLUMN last_error TEXT;

-- Event retention: events up to pruned_seq were pruned; pruned_hash is the hash of event
-- pruned_seq, the anchor the chain is verified from.
ALTER TABLE sessions ADD COLUMN pruned_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN pruned_hash TEXT;

-- Lanes are store configuration: limits hold across every process on the database.
CREATE TABLE lanes (
  name TEXT PRIMARY KEY,
  concurrency INTEGER,
  max_depth INTEGER,
  updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Rate-limit state shared by every process: per key, the sub-buckets of each sliding window
-- (window_ms 60000, 3600000, 86400000; bucket = sub-bucket index) and the burst bucket
-- (window_ms 0; bucket = when it was last refilled, count = tokens left).
CREATE TABLE rate_windows (
  key TEXT NOT NULL,
  window_ms INTEGER NOT NULL,
  bucket INTEGER NOT NULL,
  count REAL NOT NULL,
  PRIMARY KEY (key, window_ms, bucket)
) STRICT, WITHOUT ROWID;

-- Registered services (workers), visible to every process.
CREATE TABLE services (
  name TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  capabilities TEXT NOT NULL,
  max_concurrency INTEGER NOT NULL,
  owner TEXT NOT NULL,
  health TEXT NOT NULL,
  registered_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Counting by state (status, running per lane) and finding finished rows for retention.
CREATE INDEX tasks_state ON tasks(state, lane, updated_at);
CREATE INDEX processes_finished ON processes(completed_at) WHERE state IN ('terminated', 'zombie');
-- When the next delayed task of a lane comes due, without scanning the lane.
CREATE INDEX tasks_available ON tasks(lane, available_at) WHERE state = 'queued';
`,
  },
  {
    version: 4,
    name: 'hot_path',
    sql: `
-- The event log stored in segments: the events one transaction appends to one session (and one
-- process) share a row. Each event keeps its own seq and hash, chained exactly as before
-- (hash = sha256(prev_hash || canonical event)); a segment stores them as a JSON array of
-- [seq, type, ts, trace_id, task_id, attempt, data, hash], with the prev_hash of its first event and
-- the hash of its last; ts is its first event's. One row and one index entry per batch instead of per event.
CREATE TABLE event_segments (
  session_id TEXT NOT NULL,
  last_seq INTEGER NOT NULL,
  first_seq INTEGER NOT NULL,
  process_id TEXT,
  ts INTEGER NOT NULL,
  body TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL,
  PRIMARY KEY (session_id, last_seq)
) STRICT, WITHOUT ROWID;
INSERT INTO event_segments (session_id, last_seq, first_seq, process_id, ts, body, prev_hash, hash)
SELECT session_id, seq, seq, process_id, ts,
  json_array(json_array(seq, type, ts, trace_id, task_id, attempt, json(data), hash)), prev_hash, hash
FROM events ORDER BY session_id, seq;
DROP TABLE events;
CREATE INDEX event_segments_process ON event_segments(process_id, last_seq) WHERE process_id IS NOT NULL;

-- One row per event, for people and ad-hoc SQL (read-only).
CREATE VIEW events AS
SELECT s.session_id AS session_id, e.value ->> 0 AS seq, e.value ->> 1 AS type, e.value ->> 2 AS ts,
  e.value ->> 3 AS trace_id, s.process_id AS process_id, e.value ->> 4 AS task_id, e.value ->> 5 AS attempt,
  e.value -> 6 AS data, e.value ->> 7 AS hash, s.last_seq AS segment
FROM event_segments s, json_each(s.body) e;

-- Tasks split in two: a small hot row (task_state) that every claim, heartbeat and settle rewrites,
-- and the cold rest (task_data: payload, options, ids) written once at submit and again only for
-- a result, an error or new options. Both share an integer key n. The view \`tasks\` joins them
-- back into the task row every reader knows.
CREATE TABLE task_data (
  n INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  session_id TEXT NOT NULL REFERENCES sessions(id),
  process_id TEXT,
  payload TEXT NOT NULL,
  priority INTEGER NOT NULL,
  max_attempts INTEGER NOT NULL,
  idempotency_key TEXT,
  last_error TEXT,
  result TEXT,
  trace_id TEXT NOT NULL,
  options TEXT NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;
CREATE TABLE task_state (
  n INTEGER PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('agent_step','job','plan_task')),
  lane TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('queued','running','succeeded','failed','dead','canceled')),
  sort_key INTEGER NOT NULL,
  available_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  lease_owner TEXT,
  lease_token TEXT,
  lease_expires_at INTEGER,
  claimed_at INTEGER,
  updated_at INTEGER NOT NULL
) STRICT;
INSERT INTO task_data (n, id, name, session_id, process_id, payload, priority, max_attempts, idempotency_key,
  last_error, result, trace_id, options, created_at)
SELECT row_number() OVER (ORDER BY created_at, id), id, name, session_id, process_id, payload, priority,
  max_attempts, idempotency_key, last_error, result, trace_id, options, created_at FROM tasks;
INSERT INTO task_state (n, kind, lane, state, sort_key, available_at, attempts, lease_owner, lease_token,
  lease_expires_at, claimed_at, updated_at)
SELECT d.n, t.kind, t.lane, t.state, t.sort_key, t.available_at, t.attempts, t.lease_owner, t.lease_token,
  t.lease_expires_at, t.claimed_at, t.updated_at FROM tasks t JOIN task_data d ON d.id = t.id;
DROP TABLE tasks;
CREATE INDEX task_data_process ON task_data(process_id) WHERE process_id IS NOT NULL;
CREATE UNIQUE INDEX task_data_idempotency ON task_data(idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX task_due ON task_state(lane, sort_key) WHERE state = 'queued';
CREATE INDEX task_available ON task_state(lane, available_at) WHERE state = 'queued';
CREATE INDEX task_lease ON task_state(lease_expires_at) WHERE state = 'running';
-- The dead-letter queue per lane, oldest first (retention finds finished tasks in key order).
CREATE INDEX task_dead ON task_state(lane, updated_at) WHERE state = 'dead';
CREATE VIEW tasks AS
SELECT d.id AS id, s.kind AS kind, d.name AS name, s.lane AS lane, d.session_id AS session_id,
  d.process_id AS process_id, d.payload AS payload, s.state AS state, d.priority AS priority,
  s.sort_key AS sort_key, s.available_at AS available_at, s.attempts AS attempts,
  d.max_attempts AS max_attempts, s.lease_owner AS lease_owner, s.lease_token AS lease_token,
  s.lease_expires_at AS lease_expires_at, s.claimed_at AS claimed_at,
  d.idempotency_key AS idempotency_key, d.last_error AS last_error, d.result AS result,
  d.trace_id AS trace_id, d.options AS options, d.created_at AS created_at,
  s.updated_at AS updated_at, s.n AS n
FROM task_state s JOIN task_data d ON d.n = s.n;

-- Workflow definitions stored once per content hash, not in every run's row: SQLite rewrites a
-- whole row (overflow pages included) on every update, and a run's row changes at every step.
CREATE TABLE workflows (
  hash TEXT PRIMARY KEY,
  definition TEXT NOT NULL,
  created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
INSERT OR IGNORE INTO workflows (hash, definition, created_at)
SELECT workflow_hash, workflow, created_at FROM processes ORDER BY created_at;
ALTER TABLE processes RENAME TO process_rows;
ALTER TABLE process_rows DROP COLUMN workflow;
CREATE INDEX process_rows_workflow ON process_rows(workflow_hash);
CREATE VIEW processes AS
SELECT p.pid AS pid, p.session_id AS session_id, p.user_id AS user_id, p.parent_pid AS parent_pid,
  p.workflow_name AS workflow_name, w.definition AS workflow, p.workflow_hash AS workflow_hash,
  p.source AS source, p.state AS state, p.priority AS priority, p.quota AS quota, p.usage AS usage,
  p.envelope AS envelope, p.current_stage AS current_stage, p.terminal_reason AS terminal_reason,
  p.terminal_message AS terminal_message, p.trace_id AS trace_id, p.version AS version,
  p.created_at AS created_at, p.started_at AS started_at, p.updated_at AS updated_at,
  p.completed_at AS completed_at
FROM process_rows p JOIN workflows w ON w.hash = p.workflow_hash;
`,
  },
  {
    version: 5,
    name: 'tokens_sessions',
    sql: `
-- API tokens for the daemon. Only the sha256 of a token's secret is stored, never the secret;
-- scopes is a JSON array of read, write, admin, approvals.
CREATE TABLE tokens (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  scopes TEXT NOT NULL,
  secret_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER,
  revoked_at INTEGER,
  last_used_at INTEGER
) STRICT;

-- Session settings are patched compare-and-set on this version (updated_at moves with every
-- event appended to the session, so it cannot serve as the guard).
ALTER TABLE sessions ADD COLUMN version INTEGER NOT NULL DEFAULT 0;

-- Deleting a session finds its rows without scanning: interrupts and tasks by session, effects
-- by task.
CREATE INDEX interrupts_session ON interrupts(session_id);
CREATE INDEX task_data_session ON task_data(session_id);
CREATE INDEX effects_task ON effects(task_id) WHERE task_id IS NOT NULL;
`,
  },
  {
    version: 6,
    name: 'security',
    sql: `
-- Policy versions (DESIGN.md §4): id is the hash of the source (a JSON object of file name ->
-- text); stored before activation; the active one has the greatest activated_at.
CREATE TABLE policy_versions (
  id TEXT PRIMARY KEY,
  source TEXT NOT NULL,
  loaded_at INTEGER NOT NULL,
  activated_at INTEGER
) STRICT;
CREATE INDEX policy_versions_activated ON policy_versions(activated_at) WHERE activated_at IS NOT NULL;

-- Capability grants; used counts uses against budget (NULL: unlimited).
CREATE TABLE grants (
  id TEXT PRIMARY KEY,
  principal TEXT NOT NULL,
  action TEXT NOT NULL,
  resource TEXT NOT NULL,
  ask INTEGER NOT NULL CHECK (ask IN (0, 1)),
  budget INTEGER CHECK (budget IS NULL OR budget >= 0),
  used INTEGER NOT NULL DEFAULT 0,
  expires_at INTEGER,
  revoked_at INTEGER,
  revoked_by TEXT,
  revoke_reason TEXT,
  created_at INTEGER NOT NULL,
  created_by TEXT NOT NULL,
  reason TEXT
) STRICT;
CREATE INDEX grants_principal ON grants(principal, created_at);

-- The audit log: one hash chain for the whole store, seq contiguous from 1; reasons and context
-- are the canonical JSON the hash covers. audit_head (one row, id 1, created by the first
-- append) is the chain's head, moved in the transaction that appends.
CREATE TABLE audit (
  seq INTEGER PRIMARY KEY,
  ts INTEGER NOT NULL,
  trace_id TEXT NOT NULL,
  principal TEXT NOT NULL,
  action TEXT NOT NULL,
  resource TEXT NOT NULL,
  decision TEXT NOT NULL CHECK (decision IN ('allow','deny','ask')),
  decided TEXT NOT NULL CHECK (decided IN ('allow','deny','ask')),
  reasons TEXT NOT NULL,
  policy_version TEXT NOT NULL,
  context TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
) STRICT;
CREATE INDEX audit_ts ON audit(ts);
CREATE INDEX audit_principal ON audit(principal, seq);
CREATE TABLE audit_head (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  last_seq INTEGER NOT NULL,
  last_hash TEXT NOT NULL
) STRICT;
-- Append-only: the database itself refuses to change or delete a record.
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;

-- Blocked actions kept with their full context for review.
CREATE TABLE quarantine (
  id TEXT PRIMARY KEY,
  ts INTEGER NOT NULL,
  trace_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  principal TEXT NOT NULL,
  action TEXT NOT NULL,
  resource TEXT NOT NULL,
  reasons TEXT NOT NULL,
  context TEXT NOT NULL,
  process_id TEXT,
  session_id TEXT
) STRICT;
CREATE INDEX quarantine_ts ON quarantine(ts);
CREATE INDEX quarantine_kind ON quarantine(kind, ts);

-- The agents' key-value store (kv.get / kv.set): value is JSON text, version counts sets.
CREATE TABLE kv (
  namespace TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  version INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (namespace, key)
) STRICT, WITHOUT ROWID;
`,
  },
];
