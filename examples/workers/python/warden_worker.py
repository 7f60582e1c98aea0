#!/usr/bin/env python3
"""A Warden remote worker in plain Python 3.11: standard library only, no SDK.

Speaks ACP (JSON-RPC 2.0 over a WebSocket, docs/protocol/acp.md) to `warden serve`: claims jobs
of some lanes, runs a handler per job name while heartbeating the lease, then completes or fails
the attempt. See README.md next to this file.
"""
import argparse, base64, collections, hashlib, itertools, json, os, random, re, signal, socket, ssl, struct
import sys, threading, time
from urllib.parse import urlsplit

# ---------------------------------------------------------------------------------------------
# A tiny RFC 6455 WebSocket client: the upgrade, masked text frames out, frames in.

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_MESSAGE = 64 * 1024 * 1024


class ConnectionClosed(Exception):
    """The socket is gone (or never opened); calls may be retried on a new connection."""


class UpgradeRefused(Exception):
    def __init__(self, status, body):
        super().__init__(f"HTTP {status}: {body.strip()[:300]}")
        self.status = status


class WebSocket:
    def __init__(self, url, token, timeout=10.0):
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss"):
            raise ValueError(f"expected a ws:// or wss:// URL, got {url!r}")
        port = parts.port or (443 if parts.scheme == "wss" else 80)
        sock = socket.create_connection((parts.hostname, port), timeout=timeout)
        if parts.scheme == "wss":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=parts.hostname)
        self.sock, self.buf, self.send_lock = sock, b"", threading.Lock()
        try:
            self._upgrade(parts, token)
        except BaseException:
            sock.close()
            raise
        sock.settimeout(None)  # the reader thread blocks; callers time out on their own

    def _upgrade(self, parts, token):
        key = base64.b64encode(os.urandom(16)).decode()
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        # The token goes in a header only: URLs end up in logs (the server refuses ?token= anyway).
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {token}\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        while b"\r\n\r\n" not in self.buf:
            self._fill(65536)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
        if status != 101:
            length = int(headers.get("content-length", "0"))
            while len(self.buf) < length:
                self._fill(length - len(self.buf))
            raise UpgradeRefused(status, self.buf[:length].decode("utf-8", "replace"))
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        if (
            headers.get("upgrade", "").lower() != "websocket"
            or "upgrade" not in headers.get("connection", "").lower()
            or headers.get("sec-websocket-accept") != accept
        ):
            raise ConnectionClosed("the server's answer is not a valid WebSocket upgrade")

    def _fill(self, n):
        data = self.sock.recv(n)
        if not data:
            raise ConnectionClosed("the server closed the connection")
        self.buf += data

    def _read(self, n):
        while len(self.buf) < n:
            self._fill(max(n - len(self.buf), 65536))
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def _send_frame(self, opcode, payload):
        # Clients mask every frame (RFC 6455 §5.3) with a fresh key.
        n, mask = len(payload), os.urandom(4)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        if n:
            stream = (mask * (n // 4 + 1))[:n]
            masked = int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")
            payload = masked.to_bytes(n, "big")
        with self.send_lock:
            try:
                self.sock.sendall(header + mask + payload)
            except OSError as e:
                raise ConnectionClosed(str(e)) from e

    def send_text(self, text):
        self._send_frame(0x1, text.encode("utf-8"))

    def recv_text(self):
        """The next whole data message, reassembled from continuation frames; answers pings."""
        parts, total = [], 0
        while True:
            b0, b1 = self._read(2)
            fin, opcode, n = b0 & 0x80, b0 & 0x0F, b1 & 0x7F
            if b0 & 0x70 or b1 & 0x80:
                self.close(1002)
                raise ConnectionClosed("protocol error: reserved bits or a masked server frame")
            if n == 126:
                (n,) = struct.unpack("!H", self._read(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", self._read(8))
            if total + n > MAX_MESSAGE:
                self.close(1009)
                raise ConnectionClosed("message too big")
            payload = self._read(n)
            if opcode >= 0x8 and (n > 125 or not fin):
                self.close(1002)
                raise ConnectionClosed("protocol error: a fragmented or oversized control frame")
            if opcode == 0x9:  # ping: answer with the same payload
                self._send_frame(0xA, payload)
            elif opcode == 0xA:  # pong to nothing we sent: ignore
                pass
            elif opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self.close(code if code != 1005 else 1000)
                reason = payload[2:].decode("utf-8", "replace")
                raise ConnectionClosed(f"closed by the server ({code} {reason})".strip())
            elif (opcode in (0x1, 0x2) and not parts) or (opcode == 0x0 and parts):
                parts.append(payload)
                total += n
                if fin:
                    return b"".join(parts).decode("utf-8")
            else:
                self.close(1002)
                raise ConnectionClosed(f"protocol error: unexpected opcode {opcode}")

    def close(self, code=1000):
        try:
            self._send_frame(0x8, struct.pack("!H", code))
        except ConnectionClosed:
            pass
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


# ---------------------------------------------------------------------------------------------
# JSON-RPC 2.0 over that socket: a reader thread matches responses to calls by id.


class RpcError(Exception):
    def __init__(self, error):
        data = error.get("data") or {}
        super().__init__(f"{data.get('code', error.get('code'))}: {error.get('message')}")
        self.code = data.get("code")  # Warden's typed error code, e.g. LEASE_LOST
        self.retryable = bool(data.get("retryable"))


class RpcConnection:
    def __init__(self, url, token, log):
        self.ws, self.log = WebSocket(url, token), log
        self.ids, self.pending, self.lock = itertools.count(1), {}, threading.Lock()
        # Server notifications (events.event, system.backpressure): kept, bounded, for a handler
        # that subscribes to something; this worker subscribes to nothing.
        self.closed, self.notifications = None, collections.deque(maxlen=100)
        threading.Thread(target=self._read_loop, daemon=True).start()

    def _read_loop(self):
        try:
            while True:
                msg = json.loads(self.ws.recv_text())
                if not isinstance(msg, dict):
                    continue
                if "id" in msg and ("result" in msg or "error" in msg):
                    with self.lock:
                        slot = self.pending.pop(msg["id"], None)
                    if slot:
                        slot[1].append(msg)
                        slot[0].set()
                elif msg.get("method") == "system.shutdown":
                    self.log(f"the daemon is stopping: {msg.get('params', {}).get('reason')}")
                elif "id" not in msg:
                    self.notifications.append(msg)
        except (ConnectionClosed, OSError, ValueError) as e:
            self._fail(ConnectionClosed(str(e)))

    def _fail(self, error):
        with self.lock:
            self.closed = self.closed or error
            pending, self.pending = self.pending, {}
        for event, _ in pending.values():
            event.set()  # an empty slot: the caller raises self.closed

    def call(self, method, params, timeout=30.0, interrupt=None):
        """Sends a request and waits for its response; `interrupt()` true gives up (and closes)."""
        event, slot = threading.Event(), []
        with self.lock:
            if self.closed:
                raise self.closed
            request_id = next(self.ids)
            self.pending[request_id] = (event, slot)
        try:
            request = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
            self.ws.send_text(json.dumps(request))
        except ConnectionClosed as e:
            self._fail(e)
            raise
        deadline = time.monotonic() + timeout
        while not event.wait(0.2):  # short slices, so that signals and interrupts are seen
            if interrupt and interrupt():
                self.close()  # the daemon aborts a pending long poll when its connection goes
                raise ConnectionClosed("interrupted")
            if time.monotonic() > deadline:
                self.close()
                raise ConnectionClosed(f"no answer to {method} in {timeout:.0f} s")
        if not slot:
            raise self.closed
        if "error" in slot[0]:
            raise RpcError(slot[0]["error"])
        return slot[0]["result"]

    def close(self):
        self.ws.close()
        self._fail(ConnectionClosed("closed"))


# ---------------------------------------------------------------------------------------------
# The worker.


class JobError(Exception):
    """Raise from a handler to steer the retry: retryable=False ends the task `failed` at once."""

    def __init__(self, message, retryable=True, retry_after_ms=None, code=None):
        super().__init__(message)
        self.retryable, self.retry_after_ms, self.code = retryable, retry_after_ms, code


class LeaseLost(Exception):
    """The attempt is over (lease expired and reclaimed, or canceled): drop the work."""


class Job:
    """What a handler gets: the task, and `lease_lost`, set when the attempt is taken away."""

    def __init__(self, claim):
        task = claim["task"]
        self.task_id, self.name, self.payload = task["id"], task["name"], task.get("payload")
        self.attempt, self.lease_lost = claim["attempt"], threading.Event()


def job_upper(payload, job):
    return {"text": payload["text"].upper()}


def job_sleep(payload, job):
    if job.lease_lost.wait(float(payload["seconds"])):  # wakes early when the lease is lost
        raise LeaseLost()
    return {"slept": payload["seconds"]}


def job_fail(payload, job):
    payload = payload or {}
    raise JobError(
        payload.get("message", "failed on purpose"),
        retryable=payload.get("retryable", True),
        retry_after_ms=payload.get("retry_after_ms"),
    )


HANDLERS = {"upper": job_upper, "sleep": job_sleep, "fail": job_fail}


HELLO = {"protocol": {"min": 1, "max": 1}, "client": {"name": "python-worker"}}


class Worker:
    def __init__(self, args, token, handlers):
        self.args, self.token, self.handlers = args, token, handlers
        self.conn, self.conn_lock = None, threading.Lock()
        self.stopping = threading.Event()
        name = f"python-{socket.gethostname()}-{os.getpid()}"
        self.name = re.sub(r"[^A-Za-z0-9_.:-]", "-", name)[:64]

    def log(self, message):
        print(f"python-worker: {message}", file=sys.stderr, flush=True)

    def connection(self, give_up=None):
        """The live connection, or a new one after backoff (0.25 s doubling to 15 s, jittered)."""
        with self.conn_lock:
            if self.conn and not self.conn.closed:
                return self.conn
            for attempt in itertools.count():
                if give_up and give_up():
                    raise ConnectionClosed("gave up reconnecting")
                try:
                    conn = RpcConnection(self.args.url, self.token, self.log)
                    hello = conn.call("system.hello", HELLO)
                    scopes = ",".join(hello.get("scopes", []))
                    self.log(f"connected to {self.args.url} ({hello.get('connection_id')}, {scopes})")
                    self.conn = conn
                    return conn
                except UpgradeRefused as e:
                    if e.status in (401, 403):
                        raise  # a wrong token will not get better by retrying
                    error = e
                except (ConnectionClosed, OSError) as e:
                    error = e
                delay = min(15.0, 0.25 * 2**attempt) * random.uniform(0.5, 1.0)
                self.log(f"cannot connect ({error}); retrying in {delay:.1f} s")
                deadline = time.monotonic() + delay
                while time.monotonic() < deadline and not (give_up and give_up()):
                    time.sleep(0.2)

    def call(self, method, params, timeout=30.0, give_up=None, long_poll=False):
        """One call. A dropped connection is re-opened and the call sent again, until `give_up()`
        (repeating is safe: a second complete of one attempt answers LEASE_LOST, which ends it
        too). A long poll is also cut short by `give_up()`, by closing the connection."""
        while True:
            conn = self.connection(give_up)
            try:
                return conn.call(method, params, timeout, give_up if long_poll else None)
            except ConnectionClosed as e:
                if give_up and give_up():
                    raise
                self.log(f"connection lost during {method} ({e}); reconnecting")

    def heartbeat(self, job, token, done):
        """Renews the lease every third of it until `done`; sets `job.lease_lost` on LEASE_LOST."""
        interval, ids = self.args.lease_ms / 3000, {"task_id": job.task_id, "attempt_token": token}
        while not done.wait(interval):
            try:
                params = {**ids, "lease_ms": self.args.lease_ms}
                self.call("task.heartbeat", params, timeout=self.args.lease_ms / 1000, give_up=done.is_set)
            except RpcError as e:
                if e.code == "LEASE_LOST":
                    self.log(f"lease lost on {job.task_id}; abandoning it")
                    job.lease_lost.set()
                    return
                self.log(f"heartbeat of {job.task_id} refused: {e}")
            except Exception as e:  # keep beating; the next call reconnects
                self.log(f"heartbeat of {job.task_id} failed: {e}")

    def run(self, claim):
        job, token = Job(claim), claim["attempt_token"]
        ids = {"task_id": job.task_id, "attempt_token": token}
        if self.stopping.is_set():  # claimed as a stop came in: hand it back, no attempt spent
            self.call("task.release", ids)
            return self.report(job, "released")
        self.log(f"running {job.task_id} ({job.name}, attempt {job.attempt})")
        done, result, error = threading.Event(), None, None
        beat = threading.Thread(target=self.heartbeat, args=(job, token, done), daemon=True)
        beat.start()
        try:
            handler = self.handlers.get(job.name)
            if handler is None:
                raise JobError(f"no handler for job {job.name!r}", retryable=False, code="NO_HANDLER")
            result = handler(job.payload, job)
            json.dumps(result)  # a result that is not JSON fails the attempt here, not on the wire
        except LeaseLost:
            job.lease_lost.set()
        except Exception as e:  # the handler failed: report it; the task's retry policy decides
            error = {"message": str(e) or type(e).__name__, "retryable": getattr(e, "retryable", True)}
            for key in ("code", "retry_after_ms"):
                if getattr(e, key, None) is not None:
                    error[key] = getattr(e, key)
        finally:
            done.set()
            beat.join()
        if job.lease_lost.is_set():
            return self.report(job, "lease_lost")
        if error is None:
            try:
                return self.settle(job, "task.complete", {**ids, "result": result}, "completed")
            except RpcError as e:  # e.g. PAYLOAD_TOO_LARGE: the attempt fails instead
                error = {"message": f"the daemon refused the result: {e}", "retryable": e.retryable}
        return self.settle(job, "task.fail", {**ids, "error": error}, "failed")

    def settle(self, job, method, params, outcome):
        try:
            answer = self.call(method, params)
        except RpcError as e:
            if e.code != "LEASE_LOST":
                raise
            return self.report(job, "lease_lost")
        return self.report(job, outcome, (answer.get("task") or answer).get("state"))

    def report(self, job, outcome, state=None):
        line = {"task_id": job.task_id, "name": job.name, "outcome": outcome, "attempt": job.attempt}
        print(json.dumps({**line, "state": state} if state else line), flush=True)

    def serve(self):
        lanes = [lane for lane in self.args.lanes.split(",") if lane]
        params = {"lanes": lanes, "limit": 1, "lease_ms": self.args.lease_ms,
                  "wait_ms": self.args.wait_ms, "worker_name": self.name}
        finished = 0
        while not self.stopping.is_set() and (self.args.max_tasks is None or finished < self.args.max_tasks):
            try:
                timeout = self.args.wait_ms / 1000 + 30
                answer = self.call("task.claim", params, timeout, self.stopping.is_set, long_poll=True)
                claims = answer["claims"]
            except ConnectionClosed:
                break  # a stop while long-polling or reconnecting
            if not claims and self.args.once:
                break
            for claim in claims:
                self.run(claim)
                finished += 1
        if self.stopping.is_set():
            self.log("stopped on a signal")
        if self.conn:
            self.conn.close()


def read_token(args):
    if os.environ.get("WARDEN_TOKEN"):
        return os.environ["WARDEN_TOKEN"].strip()
    home = os.environ.get("WARDEN_HOME") or os.path.expanduser("~/.warden")
    path = args.token_file or os.path.join(home, "auth.token")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError as e:
        sys.exit(f"python-worker: cannot read the token from {path} ({e.strerror}); "
                 "set WARDEN_TOKEN or --token-file")


def main(argv=None, handlers=HANDLERS):
    p = argparse.ArgumentParser(description="A Warden remote worker over ACP (standard library only).")
    p.add_argument("--url", default=os.environ.get("WARDEN_URL", "ws://127.0.0.1:7421/acp"))
    p.add_argument("--token-file", help="default: $WARDEN_HOME/auth.token (WARDEN_TOKEN wins)")
    p.add_argument("--lanes", default="default", help="comma-separated lanes to claim from")
    p.add_argument("--lease-ms", type=int, default=30_000, help="lease per claim; heartbeats every third")
    p.add_argument("--wait-ms", type=int, help="long poll per claim (default 20000; 2000 with --once)")
    p.add_argument("--once", action="store_true", help="exit when a claim finds nothing to do")
    p.add_argument("--max-tasks", type=int, help="exit after this many tasks")
    args = p.parse_args(argv)
    if args.wait_ms is None:
        args.wait_ms = 2_000 if args.once else 20_000
    worker = Worker(args, read_token(args), handlers)

    def stop(_signum, _frame):
        # Only set a flag: the main loop sees it within 0.2 s (also while long-polling). A second
        # signal exits at once; the lease then expires and another worker takes the task over.
        if worker.stopping.is_set():
            os._exit(130)
        worker.stopping.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        worker.serve()
    except (UpgradeRefused, RpcError) as e:  # a bad token or scope, no common protocol, bad lanes
        worker.log(f"the daemon refused: {e}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
