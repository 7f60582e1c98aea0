"""The jeeves ``PipelineWorker`` control loop over gRPC, as the original Python client runs it.

This is the loop of the original client (jeeves-airframe @ c1ba1cd,
``jeeves_infra/pipeline_worker.py``, ``PipelineWorker.execute``), talking to Warden's
``jeeves.engine.v1.OrchestrationService`` (``warden serve`` with ``server.grpc.listen``; see
docs/protocol/jeeves.md):

    InitializeSession → loop { GetNextInstruction → run the agent → ReportAgentResult }

Its behaviour is unchanged: no metadata and no deadline on any call, ReportAgentResult's reply
is discarded and GetNextInstruction is asked after every report, and each instruction's state
dict is merged into the local envelope (``Envelope.merge``). Any RPC error ends the run with a
"terminated" result, as in the original.

One addition, off unless asked for (``Reconnect``): when the daemon is restarted or the
connection drops, a call that fails with UNAVAILABLE (or ABORTED, Warden's "changed under you,
try again") is retried with exponential backoff until a deadline, on a channel whose own
reconnect backoff is short. Every call of the loop is safe to repeat:

- GetNextInstruction is idempotent in Warden: while a step is handed out it answers the same
  RUN_AGENT and counts nothing.
- A ReportAgentResult whose reply was lost may or may not have been committed. If it was, its
  retry names a step that is no longer outstanding and gets FAILED_PRECONDITION: the result is
  recorded already, so the loop goes on with GetNextInstruction. If it was not, the retry
  records it.
- An InitializeSession whose reply was lost gets ALREADY_EXISTS on retry: the session exists.

At WAIT_INTERRUPT the loop returns ("interrupted", with the interrupt's kind and id), as the
original does. The caller answers it the way the original documents: ``execute`` again with
``force=True`` and an envelope whose ``interrupt_pending`` is false and whose
``interrupt.response`` holds the answer; Warden resumes the waiting run. When the interrupt was
answered on Warden's side instead (``warden answer``), ``continue_session`` runs the same loop
without InitializeSession.

Only ``grpc`` and the code generate.sh writes are needed (``from jeeves.engine.v1 import …``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Protocol, Tuple

import grpc

from jeeves.engine.v1 import engine_pb2 as pb
from jeeves.engine.v1 import engine_pb2_grpc as pb_grpc

JsonObject = Dict[str, Any]
Log = Callable[[JsonObject], None]


@dataclass
class Envelope:
    """The client's copy of the envelope: what it sends at InitializeSession and merges into."""

    envelope_id: str
    raw_input: str = ""
    request_id: Optional[str] = None
    user_id: Optional[str] = None
    session_id: Optional[str] = None
    current_stage: str = "start"
    stage_order: List[str] = field(default_factory=list)
    iteration: int = 0
    llm_call_count: int = 0
    agent_hop_count: int = 0
    max_iterations: int = 3
    max_llm_calls: int = 10
    max_agent_hops: int = 21
    terminated: bool = False
    terminal_reason: Optional[str] = None
    #: Sent as the original's envelope sends them. Its merge never copies them in: the caller
    #: fills them in to answer the interrupt the loop returned at (see the module doc).
    interrupt_pending: bool = False
    interrupt: Optional[JsonObject] = None
    outputs: Dict[str, JsonObject] = field(default_factory=dict)
    metadata: JsonObject = field(default_factory=dict)

    def to_dict(self) -> JsonObject:
        """The state dict (§3.2) sent in InitializeSession; ids left unset take server defaults."""
        state: JsonObject = {
            "envelope_id": self.envelope_id,
            "raw_input": self.raw_input,
            "current_stage": self.current_stage,
            "stage_order": list(self.stage_order),
            "iteration": self.iteration,
            "llm_call_count": self.llm_call_count,
            "agent_hop_count": self.agent_hop_count,
            # The original client sends its bounds too; the server takes them from the config.
            "max_iterations": self.max_iterations,
            "max_llm_calls": self.max_llm_calls,
            "max_agent_hops": self.max_agent_hops,
            "terminated": self.terminated,
            "terminal_reason": self.terminal_reason,
            "interrupt_pending": self.interrupt_pending,
            "interrupt": self.interrupt,
            "outputs": self.outputs,
            "metadata": self.metadata,
        }
        for key in ("request_id", "user_id", "session_id"):
            value = getattr(self, key)
            if value:
                state[key] = value
        return state

    def merge(self, state: Mapping[str, Any]) -> None:
        """The original's merge: the counters and stage from the state dict, outputs updated."""
        for key in (
            "current_stage",
            "stage_order",
            "iteration",
            "llm_call_count",
            "agent_hop_count",
            "terminated",
            "terminal_reason",
        ):
            if key in state:
                setattr(self, key, state[key])
        outputs = state.get("outputs")
        if isinstance(outputs, dict):
            self.outputs.update(outputs)


class Agent(Protocol):
    """What the worker runs for RUN_AGENT: takes the envelope, returns it with its output set."""

    def process(self, envelope: Envelope) -> Envelope: ...


@dataclass
class Reconnect:
    """Opt-in retries across daemon restarts and dropped connections (see the module doc)."""

    #: How long one call keeps retrying before its error ends the run.
    deadline_s: float = 60.0
    initial_backoff_s: float = 0.05
    max_backoff_s: float = 1.0

    def channel_options(self) -> List[Tuple[str, int]]:
        # gRPC's own reconnect backoff starts at 1 s and grows to 120 s: far longer than a
        # daemon restart. Keep it short so a retried call finds the new daemon soon.
        return [
            ("grpc.initial_reconnect_backoff_ms", int(self.initial_backoff_s * 1000) or 1),
            ("grpc.min_reconnect_backoff_ms", int(self.initial_backoff_s * 1000) or 1),
            ("grpc.max_reconnect_backoff_ms", int(self.max_backoff_s * 1000) or 1),
        ]


#: Codes after which the same call is tried again (reconnect mode only).
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED})


class AlreadyCommitted(Exception):
    """A retried call was refused in the way that says an earlier attempt took effect."""

    def __init__(self, method: str, error: grpc.RpcError) -> None:
        super().__init__(f"{method}: {error.code().name}: {error.details()}")
        self.method = method
        self.error = error


def connect(address: str, reconnect: Optional[Reconnect] = None) -> grpc.Channel:
    """An insecure channel, as the original client's default (no TLS configured)."""
    options = reconnect.channel_options() if reconnect else []
    return grpc.insecure_channel(address, options=options)


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def _json_or_empty(data: bytes) -> JsonObject:
    if not data:
        return {}
    decoded = json.loads(data.decode("utf-8"))
    return decoded if isinstance(decoded, dict) else {}


def _describe(error: grpc.RpcError) -> str:
    return f"{error.code().name}: {error.details()}"


class PipelineWorker:
    """Runs a pipeline's agents for one orchestration session (``execute``)."""

    def __init__(
        self,
        channel: grpc.Channel,
        agents: Mapping[str, Agent],
        *,
        reconnect: Optional[Reconnect] = None,
        log: Optional[Log] = None,
    ) -> None:
        self._stub = pb_grpc.OrchestrationServiceStub(channel)
        self._agents = dict(agents)
        self._reconnect = reconnect
        self._log: Log = log or (lambda _event: None)
        #: Calls tried again after a retryable failure (reconnect mode).
        self.retries = 0
        #: Retried calls that turned out to have taken effect the first time.
        self.already_committed = 0

    def execute(
        self,
        process_id: str,
        pipeline_config: JsonObject,
        envelope: Envelope,
        *,
        force: bool = False,
    ) -> JsonObject:
        """The original ``PipelineWorker.execute``; returns the outcome and the merged envelope."""
        try:
            self._call(
                "InitializeSession",
                pb.InitializeSessionRequest(
                    process_id=process_id,
                    pipeline_config=_json_bytes(pipeline_config),
                    envelope=_json_bytes(envelope.to_dict()),
                    force=force,
                ),
                committed_if=grpc.StatusCode.ALREADY_EXISTS,
            )
        except AlreadyCommitted:
            pass  # our own earlier attempt created it (its reply was lost)
        except grpc.RpcError as error:
            return self._ended(envelope, error=f"Session init failed: {_describe(error)}")
        return self.continue_session(process_id, envelope)

    def continue_session(self, process_id: str, envelope: Envelope) -> JsonObject:
        """The original's loop on a session that exists, without InitializeSession.

        ``execute`` runs it right after InitializeSession. Called alone, it carries on a session
        whose interrupt was answered on Warden's side (``warden answer``): a forced
        InitializeSession there would replace the run instead.
        """
        while True:
            try:
                instr = self._call(
                    "GetNextInstruction", pb.GetNextInstructionRequest(process_id=process_id)
                )
            except grpc.RpcError as error:
                return self._ended(envelope, error=f"GetNextInstruction failed: {_describe(error)}")
            kind = pb.InstructionKind.Name(instr.kind)
            agent_config = _json_or_empty(instr.agent_config)
            state = _json_or_empty(instr.envelope)
            reason = pb.TerminalReason.Name(instr.terminal_reason) if instr.terminal_reason else ""

            if kind == "TERMINATE":
                envelope.merge(state)
                return self._ended(
                    envelope, terminal_reason=reason, message=instr.termination_message
                )
            if kind == "WAIT_INTERRUPT":
                envelope.merge(state)
                interrupt_kind = (
                    pb.InterruptKind.Name(instr.interrupt.kind)
                    if instr.HasField("interrupt")
                    else ""
                )
                return {
                    "status": "interrupted",
                    "interrupt_kind": interrupt_kind,
                    "interrupt_id": instr.interrupt.id if instr.HasField("interrupt") else "",
                    "envelope": envelope,
                }
            if kind != "RUN_AGENT":
                return self._ended(envelope, error=f"Unknown instruction kind: {kind}")

            name = instr.agent_name
            agent = self._agents.get(name)
            if agent is None:
                request = pb.ReportAgentResultRequest(
                    process_id=process_id,
                    agent_name=name,
                    output=b"",
                    success=False,
                    error=f"Agent not found: {name}",
                )
            else:
                envelope.merge(state)
                request, envelope = self._run_agent(process_id, name, agent, agent_config, envelope)
            try:
                # The reply (the next instruction) is discarded: the loop asks again.
                self._call(
                    "ReportAgentResult",
                    request,
                    committed_if=grpc.StatusCode.FAILED_PRECONDITION,
                )
                self._log({"event": "reported", "agent": name, "success": request.success})
            except AlreadyCommitted as committed:
                self._log(
                    {"event": "already_committed", "agent": name, "detail": str(committed)}
                )
            except grpc.RpcError as error:
                return self._ended(envelope, error=f"ReportAgentResult failed: {_describe(error)}")

    def _run_agent(
        self,
        process_id: str,
        name: str,
        agent: Agent,
        agent_config: JsonObject,
        envelope: Envelope,
    ) -> Tuple[pb.ReportAgentResultRequest, Envelope]:
        self._log({"event": "agent_started", "agent": name})
        started = time.monotonic()
        llm_before = envelope.llm_call_count
        try:
            envelope = agent.process(envelope)
            success, error = True, ""
        except Exception as exc:  # the agent's failure is reported, not raised
            success, error = False, str(exc)
        metrics = pb.AgentExecutionMetrics(
            llm_calls=envelope.llm_call_count - llm_before,
            tool_calls=0,
            tokens_in=0,
            tokens_out=0,
            duration_ms=int((time.monotonic() - started) * 1000),
        )
        output = envelope.outputs.get(agent_config.get("output_key") or name) if success else None
        request = pb.ReportAgentResultRequest(
            process_id=process_id,
            agent_name=name,
            output=_json_bytes(output) if output is not None else b"",
            metrics=metrics,
            success=success,
            error=error,
        )
        return request, envelope

    def session_state(self, process_id: str) -> pb.SessionState:
        """GetSessionState (not part of the original loop; for reporting what the server holds)."""
        return self._call("GetSessionState", pb.GetSessionStateRequest(process_id=process_id))

    def _call(
        self,
        method: str,
        request: Any,
        *,
        committed_if: Optional[grpc.StatusCode] = None,
    ) -> Any:
        """One RPC, with no metadata and no deadline; retried only in reconnect mode."""
        rpc = getattr(self._stub, method)
        if self._reconnect is None:
            return rpc(request)
        policy = self._reconnect
        deadline = time.monotonic() + policy.deadline_s
        backoff = policy.initial_backoff_s
        attempt = 1
        while True:
            try:
                return rpc(request)
            except grpc.RpcError as error:
                code = error.code()
                # A retry refused this way means an earlier attempt reached the server and
                # took effect (its reply was lost on the way back).
                if attempt > 1 and committed_if is not None and code == committed_if:
                    self.already_committed += 1
                    raise AlreadyCommitted(method, error) from error
                if code not in RETRYABLE or time.monotonic() + backoff > deadline:
                    raise
                self.retries += 1
                self._log(
                    {"event": "retry", "rpc": method, "code": code.name, "attempt": attempt}
                )
                time.sleep(backoff)
                backoff = min(backoff * 2, policy.max_backoff_s)
                attempt += 1

    @staticmethod
    def _ended(
        envelope: Envelope,
        *,
        terminal_reason: str = "",
        message: str = "",
        error: Optional[str] = None,
    ) -> JsonObject:
        return {
            "status": "terminated",
            "terminal_reason": terminal_reason,
            "termination_message": message,
            "error": error,
            "envelope": envelope,
        }
