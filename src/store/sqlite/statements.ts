/**
 * Every SQL statement the SQLite adapter runs, one per constant, prepared once at open.
 * Parameters are named; each header says what it returns.
 */
/**
 * Column order of positional task inserts (see taskDataRow, taskStateRow). A task is two rows:
 * task_data (cold, written once) and task_state (hot), sharing n; the view `tasks` joins them.
 */
export const TASK_DATA_COLUMNS =
  'n, id, name, session_id, process_id, payload, priority, max_attempts, idempotency_key, last_error, result, ' +
  'trace_id, options, created_at';
export const TASK_DATA_COLUMN_COUNT = 14;
export const TASK_STATE_COLUMNS =
  'n, kind, lane, state, sort_key, available_at, attempts, lease_owner, lease_token, lease_expires_at, ' +
  'claimed_at, updated_at';
export const TASK_STATE_COLUMN_COUNT = 12;
/** The hot row of the task with id @id. */
const TASK_N = '(SELECT n FROM task_data WHERE id = @id)';
/**
 * Free slots of lane @lane: its declared concurrency (the `lanes` table, shared by every
 * process) minus its running tasks; @limit when the lane declares no concurrency.
 */
const LANE_ROOM = `CASE WHEN (SELECT concurrency FROM lanes WHERE name = @lane) IS NULL THEN @limit
      ELSE (SELECT concurrency FROM lanes WHERE name = @lane)
        - (SELECT count(*) FROM task_state INDEXED BY task_lease WHERE state = 'running' AND lane = @lane) END`;
const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(', ');

export const SQL = {
  /** → SessionRow | undefined */
  sessionById: 'SELECT * FROM sessions WHERE id = ?',
  sessionByKey: 'SELECT * FROM sessions WHERE key = ?',
  sessionList: 'SELECT * FROM sessions ORDER BY created_at',
  sessionHead: 'SELECT last_seq, last_hash FROM sessions WHERE id = ?',
  sessionInsert: `INSERT INTO sessions (id, key, settings, created_at, updated_at, last_seq, last_hash)
    VALUES (@id, @key, @settings, @created_at, @updated_at, @last_seq, @last_hash)`,
  /** Compare-and-set on the settings version. → changes */
  sessionUpdate: `UPDATE sessions SET settings = @settings, version = version + 1, updated_at = @now
    WHERE id = @id AND version = @expect`,
  /** Moves the chain head; run once per session per transaction. */
  sessionSetHead: 'UPDATE sessions SET last_seq = ?, last_hash = ?, updated_at = ? WHERE id = ?',

  processById: 'SELECT * FROM processes WHERE pid = ?',
  /** A run's own row, without its workflow definition (see SqliteStore#workflow). */
  processRowById: 'SELECT * FROM process_rows WHERE pid = ?',
  /** → {definition} | undefined */
  workflowByHash: 'SELECT definition FROM workflows WHERE hash = ?',
  /** A workflow definition, once per content hash (run before processInsert). */
  workflowInsert: `INSERT INTO workflows (hash, definition, created_at) VALUES (?, ?, ?)
    ON CONFLICT (hash) DO NOTHING`,
  processInsert: `INSERT INTO process_rows (pid, session_id, user_id, parent_pid, workflow_name, workflow_hash,
      source, state, priority, quota, usage, envelope, current_stage, terminal_reason, terminal_message, trace_id,
      version, created_at, started_at, updated_at, completed_at)
    VALUES (@pid, @session_id, @user_id, @parent_pid, @workflow_name, @workflow_hash, @source, @state,
      @priority, @quota, @usage, @envelope, @current_stage, @terminal_reason, @terminal_message, @trace_id, @version,
      @created_at, @started_at, @updated_at, @completed_at)`,
  /** Compare-and-set on version; changes = 0 means the row moved on (or does not exist). */
  processUpdate: `UPDATE process_rows SET state = @state, priority = @priority, quota = @quota, usage = @usage,
      envelope = @envelope, current_stage = @current_stage, terminal_reason = @terminal_reason,
      terminal_message = @terminal_message, version = @version, started_at = @started_at, updated_at = @updated_at,
      completed_at = @completed_at
    WHERE pid = @pid AND version = @expect_version`,

  /** → SessionRunStamp[] */
  sessionRunStamps: `SELECT session_id, count(*) AS runs, total(version) AS version_sum,
      total(updated_at) AS updated_at_sum FROM process_rows GROUP BY session_id`,
  taskById: 'SELECT * FROM tasks WHERE id = ?',
  taskByIdempotencyKey: 'SELECT * FROM tasks WHERE idempotency_key = ?',
  /** Positional: see TASK_DATA_COLUMNS / TASK_STATE_COLUMNS. */
  taskDataInsert: `INSERT INTO task_data (${TASK_DATA_COLUMNS}) VALUES (${placeholders(TASK_DATA_COLUMN_COUNT)})`,
  taskStateInsert: `INSERT INTO task_state (${TASK_STATE_COLUMNS}) VALUES (${placeholders(TASK_STATE_COLUMN_COUNT)})`,
  /** The highest task key in use. → {n} */
  taskMaxN: 'SELECT coalesce(max(n), 0) AS n FROM task_data',
  /** → {n} | undefined */
  taskN: 'SELECT n FROM task_data WHERE id = ?',
  /** Cold rows by key; ? = JSON array of n. → task_data rows */
  taskDataByN: 'SELECT * FROM task_data WHERE n IN (SELECT value FROM json_each(?))',
  /**
   * Claims up to @limit due tasks of a lane in one statement, on the hot rows only. Each gets the
   * lease token `@token:<n>` (a fresh random base per claim, so tokens never repeat). → task_state rows
   */
  taskClaimBatch: `UPDATE task_state SET state = 'running', attempts = attempts + 1, lease_owner = @owner,
      lease_token = @token || ':' || n, lease_expires_at = @expires, claimed_at = @now, updated_at = @now
    WHERE n IN (SELECT n FROM task_state INDEXED BY task_due
      WHERE state = 'queued' AND lane = @lane AND available_at <= @now
      AND kind IN (SELECT value FROM json_each(@kinds)) ORDER BY sort_key
      LIMIT max(0, min(@limit, ${LANE_ROOM})))
    RETURNING *`,
  /**
   * When the next task of a lane that has room (lane concurrency, across every process) is or
   * becomes due. → {t} | undefined
   */
  /** See the `task.handoff` op. → {n, attempts, trace_id...} of the claimed task | undefined */
  taskHandoff: `UPDATE task_state SET state = 'running', attempts = attempts + 1, lease_owner = @owner,
      lease_token = @token, lease_expires_at = @expires, claimed_at = @now, updated_at = @now
    WHERE n = ${TASK_N} AND state = 'queued' AND lane = @lane AND available_at <= @now
      AND (@overtake OR NOT EXISTS (SELECT 1 FROM task_state q INDEXED BY task_due WHERE q.state = 'queued'
        AND q.lane = @lane AND q.available_at <= @now AND q.kind = task_state.kind AND q.n <> task_state.n
        AND q.sort_key <= task_state.sort_key))
      AND ${LANE_ROOM} > 0
    RETURNING attempts`,
  taskNextDueWithRoom: `SELECT available_at AS t FROM task_state WHERE state = 'queued' AND lane = @lane
      AND kind IN (SELECT value FROM json_each(@kinds)) AND ${LANE_ROOM} > 0
    ORDER BY available_at LIMIT 1`,
  /** Fenced by lease token. → changes */
  taskHeartbeat: `UPDATE task_state SET lease_expires_at = @expires, updated_at = @now
    WHERE n = ${TASK_N} AND state = 'running' AND lease_token = @token`,
  /** Fenced settle of a running task's hot row (run after attemptFromTask matched). → changes */
  taskSettle: `UPDATE task_state SET state = @state, lease_owner = NULL, lease_token = NULL,
      lease_expires_at = NULL, available_at = @available_at, sort_key = @sort_key, updated_at = @now
    WHERE n = @n AND state = 'running' AND lease_token = @token`,
  /** The hot rows a settle batch fences on; ? = JSON array of ids. → SettleRead[] */
  settleRead: `SELECT d.id, d.n, s.state, s.lease_token, s.lease_expires_at, d.last_error IS NOT NULL AS had_error
    FROM task_data d JOIN task_state s ON s.n = d.n WHERE d.id IN (SELECT value FROM json_each(?))`,
  /** Settles fenced hot rows (@ns: JSON array of n) alike. */
  taskSettleMany: `UPDATE task_state SET state = @state, lease_owner = NULL, lease_token = NULL,
      lease_expires_at = NULL, available_at = @available_at, sort_key = @sort_key, updated_at = @now
    WHERE n IN (SELECT value FROM json_each(@ns))`,
  /** Records ended attempts read off their (fenced) hot rows; ? = JSON [[id, n, now, outcome, error]]. */
  attemptsInsertMany: `INSERT INTO attempts (task_id, attempt, lease_token, worker_id, started_at, ended_at, outcome, error)
    SELECT j.value ->> 0, s.attempts, s.lease_token, s.lease_owner, COALESCE(s.claimed_at, s.updated_at),
      j.value ->> 2, j.value ->> 3, j.value ->> 4
    FROM json_each(?) j JOIN task_state s ON s.n = j.value ->> 1`,
  /**
   * A settled task's result, error and options, written only when one of them changes (the
   * common success with no result and no earlier error leaves the cold row alone).
   */
  taskSettleData: `UPDATE task_data SET result = @result, last_error = @error,
      options = COALESCE(@options, options)
    WHERE n = @n AND (result IS NOT @result OR last_error IS NOT @error OR @options IS NOT NULL)`,
  /**
   * Hands a claimed task back unstarted: queued again, the claim does not count as an attempt
   * (no attempt row, `attempts` back to what it was). Fenced by the lease token. → changes
   */
  taskRelease: `UPDATE task_state SET state = 'queued', attempts = attempts - 1, lease_owner = NULL,
      lease_token = NULL, lease_expires_at = NULL, claimed_at = NULL, available_at = @available_at,
      sort_key = @sort_key, updated_at = @now
    WHERE n = ${TASK_N} AND state = 'running' AND lease_token = @token`,
  /**
   * Cancels a queued, running or dead task, compare-and-set on the state (and lease token) the
   * caller read; clears its lease. → changes
   */
  taskCancel: `UPDATE task_state SET state = 'canceled', lease_owner = NULL, lease_token = NULL,
      lease_expires_at = NULL, updated_at = @now
    WHERE n = ${TASK_N} AND state = @expect AND state IN ('queued', 'running', 'dead')
      AND lease_token IS @token`,
  /** Running tasks of the kinds (@kinds: JSON array) whose lease expired by @now. */
  taskExpired: `SELECT * FROM tasks WHERE n IN (SELECT n FROM task_state INDEXED BY task_lease
      WHERE state = 'running' AND lease_expires_at <= @now AND kind IN (SELECT value FROM json_each(@kinds))
      ORDER BY lease_expires_at LIMIT @limit) ORDER BY lease_expires_at`,
  taskLeaseOwners: `SELECT DISTINCT lease_owner FROM task_state INDEXED BY task_lease
    WHERE state = 'running' AND lease_owner IS NOT NULL`,
  taskByOwner: `SELECT * FROM tasks WHERE n IN (SELECT n FROM task_state INDEXED BY task_lease
      WHERE state = 'running' AND lease_owner = @owner AND kind IN (SELECT value FROM json_each(@kinds))
      LIMIT @limit)`,

  serviceList: 'SELECT * FROM services ORDER BY name',
  serviceUpsert: `INSERT INTO services (name, type, capabilities, max_concurrency, owner, health, registered_at,
      updated_at) VALUES (@name, @type, @capabilities, @max_concurrency, @owner, @health, @registered_at, @updated_at)
    ON CONFLICT (name) DO UPDATE SET type = excluded.type, capabilities = excluded.capabilities,
      max_concurrency = excluded.max_concurrency, owner = excluded.owner, health = excluded.health,
      updated_at = excluded.updated_at`,
  serviceDelete: 'DELETE FROM services WHERE name = ?',
  laneList: 'SELECT * FROM lanes ORDER BY name',
  laneGet: 'SELECT * FROM lanes WHERE name = ?',
  /** Declares a lane's limits; changes = 0 when they were already these. */
  laneUpsert: `INSERT INTO lanes (name, concurrency, max_depth, updated_at) VALUES (@name, @concurrency, @max_depth, @now)
    ON CONFLICT (name) DO UPDATE SET concurrency = excluded.concurrency, max_depth = excluded.max_depth,
      updated_at = excluded.updated_at
    WHERE concurrency IS NOT excluded.concurrency OR max_depth IS NOT excluded.max_depth`,

  fairClockGet: 'SELECT last_key FROM fair_clock WHERE lane = ? AND session_id = ? AND rank = ?',
  fairClockSet: `INSERT INTO fair_clock (lane, session_id, rank, last_key) VALUES (?, ?, ?, ?)
    ON CONFLICT (lane, session_id, rank) DO UPDATE SET last_key = excluded.last_key`,
  taskDepths: `SELECT lane, count(*) AS n FROM task_state INDEXED BY task_due WHERE state = 'queued' GROUP BY lane`,
  taskCountQueued: `SELECT count(*) AS n FROM task_state INDEXED BY task_due WHERE state = 'queued' AND lane = ?`,
  taskNextLease: `SELECT lease_expires_at AS t FROM task_state INDEXED BY task_lease WHERE state = 'running'
      AND kind IN (SELECT value FROM json_each(@kinds)) ORDER BY lease_expires_at LIMIT 1`,
  taskClearIdempotencyKey: 'UPDATE task_data SET idempotency_key = NULL WHERE id = ?',
  /**
   * Dead → queued with a fresh budget of attempts (attempt numbers keep counting, so the
   * history of earlier attempts stays intact) and the poison counter cleared. → TaskRow | undefined
   */
  taskRedrive: `UPDATE task_state SET state = 'queued', available_at = @now, sort_key = @sort_key,
      lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = @now
    WHERE n = ${TASK_N} AND state = 'dead' RETURNING n, attempts`,
  /** The cold half of a redrive (after taskRedrive matched). */
  taskRedriveData: `UPDATE task_data SET max_attempts = @attempts + max_attempts,
      options = json_set(options, '$.consecutive_fingerprint', NULL) WHERE n = @n`,
  /** → {n} | undefined */
  taskPurge: `DELETE FROM task_state WHERE n = ${TASK_N} AND state = 'dead' RETURNING n`,
  taskDataDelete: 'DELETE FROM task_data WHERE n = ?',
  attemptPurge: 'DELETE FROM attempts WHERE task_id = ?',

  /** Replacing a schedule also replaces its failure count and last error (a fresh start). */
  scheduleUpsert: `INSERT INTO schedules (id, name, kind, expr, job, lane, payload, options, enabled, next_run_at,
      last_run_at, last_task_id, failures, last_error, created_at, updated_at)
    VALUES (@id, @name, @kind, @expr, @job, @lane, @payload, @options, @enabled, @next_run_at, @last_run_at,
      @last_task_id, @failures, @last_error, @created_at, @updated_at)
    ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, expr = excluded.expr, job = excluded.job,
      lane = excluded.lane, payload = excluded.payload, options = excluded.options, enabled = excluded.enabled,
      next_run_at = excluded.next_run_at, failures = excluded.failures, last_error = excluded.last_error,
      updated_at = excluded.updated_at`,
  scheduleDelete: 'DELETE FROM schedules WHERE name = ?',
  scheduleList: 'SELECT * FROM schedules ORDER BY name',
  scheduleDue:
    'SELECT * FROM schedules WHERE enabled = 1 AND next_run_at <= ? ORDER BY next_run_at',
  /** Compare-and-set on next_run_at: an occurrence fires once; failures reset. → ScheduleRow | undefined */
  scheduleFired: `UPDATE schedules SET next_run_at = @next, last_run_at = @at, last_task_id = @task, failures = 0,
      last_error = NULL, updated_at = @now
    WHERE id = @id AND next_run_at = @expected RETURNING *`,
  /** Compare-and-set on next_run_at: an occurrence that could not fire backs off. → ScheduleRow | undefined */
  scheduleDeferred: `UPDATE schedules SET next_run_at = @retry_at, failures = failures + 1, last_error = @error,
      updated_at = @now
    WHERE id = @id AND next_run_at = @expected RETURNING *`,

  /**
   * Records the end of the running attempt, read from the task row; it is also the lease fence:
   * changes = 0 means the token is stale.
   */
  attemptFromTask: `INSERT INTO attempts (task_id, attempt, lease_token, worker_id, started_at, ended_at, outcome, error)
    SELECT @id, attempts, lease_token, lease_owner, COALESCE(claimed_at, updated_at), @now, @outcome, @error
    FROM task_state WHERE n = ${TASK_N} AND state = 'running' AND lease_token = @token
      AND (@expired_by IS NULL OR lease_expires_at <= @expired_by)`,
  attemptList: 'SELECT * FROM attempts WHERE task_id = ? ORDER BY attempt',

  interruptById: 'SELECT * FROM interrupts WHERE id = ?',
  interruptInsert: `INSERT INTO interrupts (id, session_id, process_id, kind, stage, step, prompt, data, status,
      response, resolver, trace_id, created_at, expires_at, resolved_at)
    VALUES (@id, @session_id, @process_id, @kind, @stage, @step, @prompt, @data, @status, @response, @resolver,
      @trace_id, @created_at, @expires_at, @resolved_at)`,
  /** Only a pending interrupt settles. → changes */
  interruptSettle: `UPDATE interrupts SET status = @status, response = @response, resolver = @resolver,
      resolved_at = @now WHERE id = @id AND status = 'pending'`,
  interruptExpired: `SELECT * FROM interrupts WHERE status = 'pending' AND expires_at IS NOT NULL AND expires_at <= ?
    ORDER BY expires_at`,
  /** On interrupts_status (status, expires_at). → {n} */
  interruptCountPending: `SELECT count(*) AS n FROM interrupts WHERE status = 'pending'`,
  /** → {t: number | null} */
  interruptNextExpiry: `SELECT min(expires_at) AS t FROM interrupts WHERE status = 'pending' AND expires_at IS NOT NULL`,

  /** Segments holding events after a seq (see event-log.ts). → SegmentRow[] */
  eventsAfter: `SELECT * FROM event_segments WHERE session_id = ? AND last_seq > ? ORDER BY last_seq`,
  eventsOfProcessAfter: `SELECT * FROM event_segments WHERE session_id = ? AND process_id = ? AND last_seq > ?
    ORDER BY last_seq`,

  tokenById: 'SELECT * FROM tokens WHERE id = ?',
  tokenList: 'SELECT * FROM tokens ORDER BY created_at, id',
  tokenInsert: `INSERT INTO tokens (id, name, scopes, secret_hash, created_at, expires_at, revoked_at, last_used_at)
    VALUES (@id, @name, @scopes, @secret_hash, @created_at, @expires_at, @revoked_at, @last_used_at)`,
  /** Compare-and-set on "not revoked". → changes */
  tokenRevoke: 'UPDATE tokens SET revoked_at = @now WHERE id = @id AND revoked_at IS NULL',
  tokenTouch: 'UPDATE tokens SET last_used_at = @now WHERE id = @id',

  countProcesses: 'SELECT state, count(*) AS n FROM processes GROUP BY state',
  countTasks: 'SELECT state, count(*) AS n FROM task_state GROUP BY state',
} as const;

export type StatementName = keyof typeof SQL;
