"""Runs one jeeves pipeline against Warden's OrchestrationService with pipeline_worker.py.

    PYTHONPATH=gen /usr/bin/python3 run_pipeline.py --address 127.0.0.1:50051 \\
        --pipeline sequential

Pipelines (every agent is a plain Python function returning its output object, and counts one
LLM call):

- ``sequential``: the reference's understand → think → respond, bounds 3/10/21.
- ``parallel``: ``default_run_mode: "parallel"``: plan, then search_a and search_b (each
  requires plan), then merge, which requires both and joins ``--join all`` (waits for both) or
  ``--join any`` (the first to complete wins; the other is cancelled).
- ``chain``: ``--stages`` agents s1 → s2 → … in a line (for restart drills, with
  ``--agent-delay`` and ``--reconnect``).
- ``loop``: plan → critic, and critic routes back to plan (``verdict: again``) until it accepts
  on its ``--accept-after``-th review (default: never); the edge critic → plan is limited to
  ``--edge-limit`` traversals, past which the run ends MAX_ITERATIONS_EXCEEDED
  (``max_loop_exceeded``).
- ``clarify``: understand asks "Which city?" (routes to ``clarification``), respond answers
  with the city once it has one (``clarification_resume_stage: respond``).

``--max-llm-calls N`` replaces the pipeline's LLM call budget (MAX_LLM_CALLS_EXCEEDED once N
calls were made and stages remain).

The original loop returns at WAIT_INTERRUPT. Then this script reads the interrupt (id, kind,
question) from GetSessionState and, given ``--answer TEXT``, resumes the way the original
documents: InitializeSession(force = true) with the envelope whose ``interrupt_pending`` is
false and whose ``interrupt.response`` holds the answer, and runs the loop again. Without an
answer it stops there and prints the interrupt, so that someone can answer it on Warden's side
(``warden answer <id> <text>``); ``--continue`` then runs the loop again on the existing session
without InitializeSession.

Progress goes to stderr as JSON lines; the last line on stdout is the result as JSON:
``status``, ``terminal_reason``, the envelope's counters, the agents that ran (in order), the
outputs, the interrupt, and what GetSessionState says (``session``: ``edge_traversals``;
``state``: the state dict). Exit status 0 when the run ended COMPLETED, 2 when it waits on an
interrupt, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from typing import Any, Callable, Dict, List, Tuple

import grpc

try:
    from jeeves.engine.v1 import engine_pb2 as pb
except ImportError:  # pragma: no cover - a setup mistake, said plainly
    sys.exit(
        "run_pipeline.py: cannot import jeeves.engine.v1: run generate.sh and put its output "
        "directory on PYTHONPATH (default: examples/clients/python-grpc/gen)"
    )
from pipeline_worker import Envelope, PipelineWorker, Reconnect, connect

JsonObject = Dict[str, Any]
AgentFn = Callable[[Envelope], JsonObject]

BOUNDS = {"max_iterations": 3, "max_llm_calls": 10, "max_agent_hops": 21}


class FunctionAgent:
    """An agent made of a function from the envelope to its output object: one LLM call."""

    def __init__(self, name: str, fn: AgentFn, delay_s: float, ran: List[str]) -> None:
        self.name = name
        self._fn = fn
        self._delay_s = delay_s
        self._ran = ran

    def process(self, envelope: Envelope) -> Envelope:
        if self._delay_s > 0:
            time.sleep(self._delay_s)  # stands in for the model call
        envelope.outputs[self.name] = self._fn(envelope)
        envelope.llm_call_count += 1
        self._ran.append(self.name)
        return envelope


def _sequential() -> Tuple[JsonObject, Dict[str, AgentFn]]:
    config = {
        "name": "hello",
        "agents": [
            {"name": "understand", "stage_order": 1, "default_next": "think"},
            {"name": "think", "stage_order": 2, "default_next": "respond"},
            {"name": "respond", "stage_order": 3, "default_next": "end"},
        ],
        **BOUNDS,
    }
    fns: Dict[str, AgentFn] = {
        "understand": lambda env: {"intent": "greet", "text": env.raw_input},
        "think": lambda env: {
            "plan": f"answer the {env.outputs.get('understand', {}).get('intent', '?')}"
        },
        "respond": lambda env: {
            "response": f"{env.outputs.get('think', {}).get('plan', '?')}: hello!"
        },
    }
    return config, fns


def _parallel(join: str) -> Tuple[JsonObject, Dict[str, AgentFn]]:
    config = {
        "name": f"fork-join-{join}",
        "default_run_mode": "parallel",
        "agents": [
            {"name": "plan", "stage_order": 1},
            {"name": "search_a", "stage_order": 2, "requires": ["plan"]},
            {"name": "search_b", "stage_order": 3, "requires": ["plan"]},
            {
                "name": "merge",
                "stage_order": 4,
                "requires": ["search_a", "search_b"],
                "join_strategy": join,
            },
        ],
        **BOUNDS,
    }

    def search(source: str) -> AgentFn:
        return lambda env: {
            "found": f"{source} results for {env.outputs.get('plan', {}).get('query', '?')}"
        }

    fns: Dict[str, AgentFn] = {
        "plan": lambda env: {"query": env.raw_input or "everything"},
        "search_a": search("a"),
        "search_b": search("b"),
        # Merges what the searches that ran produced (with `any`, only the winner's).
        "merge": lambda env: {
            "merged": sorted(
                env.outputs[name]["found"]
                for name in ("search_a", "search_b")
                if isinstance(env.outputs.get(name), dict) and "found" in env.outputs[name]
            )
        },
    }
    return config, fns


def _chain(stages: int) -> Tuple[JsonObject, Dict[str, AgentFn]]:
    names = [f"s{i}" for i in range(1, stages + 1)]
    agents = [
        {
            "name": name,
            "stage_order": i + 1,
            "default_next": names[i + 1] if i + 1 < len(names) else "end",
        }
        for i, name in enumerate(names)
    ]
    config = {
        "name": f"chain-{stages}",
        "agents": agents,
        "max_iterations": 3,
        "max_llm_calls": stages,
        "max_agent_hops": stages,
    }

    def stage(i: int) -> AgentFn:
        return lambda env: {"step": i, "after": sorted(env.outputs)}

    return config, {name: stage(i + 1) for i, name in enumerate(names)}


def _loop(edge_limit: int, accept_after: int) -> Tuple[JsonObject, Dict[str, AgentFn]]:
    config = {
        "name": "loop",
        "agents": [
            {"name": "plan", "stage_order": 1, "default_next": "critic"},
            {
                "name": "critic",
                "stage_order": 2,
                "default_next": "end",
                "routing_rules": [{"condition": "verdict", "value": "again", "target": "plan"}],
            },
        ],
        # Roomy bounds: the edge limit is what stops this loop.
        "max_iterations": 10,
        "max_llm_calls": 20,
        "max_agent_hops": 21,
        "edge_limits": [{"from": "critic", "to": "plan", "max_count": edge_limit}],
    }

    def draft(env: Envelope) -> JsonObject:
        # The outputs hold the previous round's draft: Warden deletes no output on a loop-back
        # (the original deleted `plan` and `critic`: defect 19).
        return {"draft": env.outputs.get("plan", {}).get("draft", 0) + 1}

    def review(env: Envelope) -> JsonObject:
        round_ = env.outputs.get("plan", {}).get("draft", 0)
        accepted = 0 < accept_after <= round_
        return {"verdict": "accept" if accepted else "again", "reviewed": round_}

    return config, {"plan": draft, "critic": review}


def _clarify() -> Tuple[JsonObject, Dict[str, AgentFn]]:
    config = {
        "name": "clarify",
        "agents": [
            {
                "name": "understand",
                "stage_order": 1,
                "routing_rules": [
                    {"condition": "needs", "value": "clarification", "target": "clarification"}
                ],
                "default_next": "respond",
            },
            {"name": "respond", "stage_order": 2, "default_next": "end"},
        ],
        # Where the run goes on once the person answered; the answer is the output
        # `clarification` ({"text": …}).
        "clarification_resume_stage": "respond",
        **BOUNDS,
    }
    fns: Dict[str, AgentFn] = {
        "understand": lambda env: {
            "needs": "clarification",
            "question": "Which city?",
            "text": env.raw_input,
        },
        "respond": lambda env: {
            "response": f"Sunny in {env.outputs.get('clarification', {}).get('text', '?')}"
        },
    }
    return config, fns


def _pending_interrupt(state: JsonObject) -> JsonObject:
    """The interrupt the session waits on, as its state dict shows it (the loop keeps only id
    and kind: the original's merge copies no interrupt)."""
    interrupt = state.get("interrupt")
    return interrupt if isinstance(interrupt, dict) else {}


def _answered(envelope: Envelope, interrupt: JsonObject, text: str) -> Envelope:
    """The envelope that answers `interrupt` (§4.6): not pending, the response filled in."""
    envelope.interrupt_pending = False
    envelope.interrupt = {
        "id": interrupt.get("id", ""),
        "kind": interrupt.get("kind", ""),
        "question": interrupt.get("question", ""),
        "response": {"text": text},
    }
    return envelope


def _log(event: JsonObject) -> None:
    print(json.dumps(event), file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--address",
        default=os.environ.get("KERNEL_GRPC_ADDRESS", "localhost:50051"),
        help="host:port of warden serve's gRPC listener (env KERNEL_GRPC_ADDRESS)",
    )
    parser.add_argument("--process-id", default=None, help="default: env_<random>")
    parser.add_argument(
        "--pipeline",
        choices=("sequential", "parallel", "chain", "loop", "clarify"),
        default="sequential",
    )
    parser.add_argument("--join", choices=("all", "any"), default="all", help="parallel only")
    parser.add_argument("--stages", type=int, default=6, help="chain only")
    parser.add_argument(
        "--edge-limit", type=int, default=2, help="loop only: critic → plan traversals allowed"
    )
    parser.add_argument(
        "--accept-after",
        type=int,
        default=0,
        metavar="N",
        help="loop only: the critic accepts the Nth draft (default 0: never)",
    )
    parser.add_argument(
        "--max-llm-calls", type=int, default=None, help="replaces the pipeline's LLM call budget"
    )
    parser.add_argument(
        "--answer",
        action="append",
        default=[],
        metavar="TEXT",
        help="answer the interrupt the loop returns at through InitializeSession(force) "
        "and run on (repeat for several); without it the script stops at WAIT_INTERRUPT",
    )
    parser.add_argument(
        "--continue",
        dest="continue_session",
        action="store_true",
        help="no InitializeSession: run the loop on the existing session (e.g. after "
        "`warden answer`)",
    )
    parser.add_argument("--input", default="hello", help="the envelope's raw_input")
    parser.add_argument("--agent-delay", type=float, default=0.0, help="seconds per agent")
    parser.add_argument("--force", action="store_true", help="replace an existing session")
    parser.add_argument(
        "--reconnect",
        type=float,
        default=None,
        metavar="SECONDS",
        help="retry calls across restarts and dropped connections for up to SECONDS each",
    )
    return parser


def _pipeline(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> Tuple[JsonObject, Dict[str, AgentFn]]:
    if args.pipeline == "sequential":
        config, fns = _sequential()
    elif args.pipeline == "parallel":
        config, fns = _parallel(args.join)
    elif args.pipeline == "loop":
        if args.edge_limit < 1:
            parser.error("--edge-limit must be at least 1")
        config, fns = _loop(args.edge_limit, args.accept_after)
    elif args.pipeline == "clarify":
        config, fns = _clarify()
    else:
        if args.stages < 1:
            parser.error("--stages must be at least 1")
        config, fns = _chain(args.stages)
    if args.max_llm_calls is not None:
        if args.max_llm_calls < 1:
            parser.error("--max-llm-calls must be at least 1")
        config["max_llm_calls"] = args.max_llm_calls
    return config, fns


def _session(worker: PipelineWorker, process_id: str) -> Tuple[JsonObject, JsonObject]:
    """GetSessionState (not part of the original loop): the session and its state dict."""
    try:
        state = worker.session_state(process_id)
    except grpc.RpcError as error:
        return {"error": f"{error.code().name}: {error.details()}"}, {}
    session = {
        "current_stage": state.current_stage,
        "stage_order": list(state.stage_order),
        "edge_traversals": dict(state.edge_traversals),
        "terminated": state.terminated,
        "terminal_reason": pb.TerminalReason.Name(state.terminal_reason),
    }
    return session, json.loads(state.envelope.decode("utf-8")) if state.envelope else {}


def _phase(result: JsonObject) -> JsonObject:
    """What one return of the loop was, for the result's `phases`."""
    if result["status"] == "interrupted":
        return {"status": "interrupted", "interrupt_kind": result.get("interrupt_kind")}
    return {
        "status": result["status"],
        "terminal_reason": result.get("terminal_reason", ""),
        "error": result.get("error"),
    }


def _run(
    worker: PipelineWorker,
    process_id: str,
    config: JsonObject,
    envelope: Envelope,
    args: argparse.Namespace,
) -> JsonObject:
    """The loop (after InitializeSession, or alone with --continue), then the interrupt
    answers: each one resumes through InitializeSession(force) and runs the loop again."""
    if args.continue_session:
        result = worker.continue_session(process_id, envelope)
    else:
        result = worker.execute(process_id, config, envelope, force=args.force)
    phases = [_phase(result)]
    answers = list(args.answer)
    answered: List[JsonObject] = []
    interrupt: JsonObject = {}
    while result["status"] == "interrupted":
        interrupt = _pending_interrupt(_session(worker, process_id)[1])
        _log({"event": "interrupted", "interrupt": interrupt})
        if not answers:
            break  # someone else answers it (warden answer), then --continue
        text = answers.pop(0)
        answered.append({"id": interrupt.get("id"), "text": text})
        _log({"event": "answering", "interrupt_id": interrupt.get("id"), "text": text})
        envelope = _answered(result["envelope"], interrupt, text)
        result = worker.execute(process_id, config, envelope, force=True)
        phases.append(_phase(result))
    return {**result, "phases": phases, "answered": answered, "interrupt": interrupt or None}


def main(argv: List[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    config, fns = _pipeline(parser, args)

    process_id = args.process_id or f"env_{secrets.token_hex(8)}"
    ran: List[str] = []
    agents = {name: FunctionAgent(name, fn, args.agent_delay, ran) for name, fn in fns.items()}
    reconnect = Reconnect(deadline_s=args.reconnect) if args.reconnect is not None else None
    channel = connect(args.address, reconnect)
    try:
        worker = PipelineWorker(channel, agents, reconnect=reconnect, log=_log)
        envelope = Envelope(
            envelope_id=process_id,
            raw_input=args.input,
            **{key: config[key] for key in BOUNDS},
        )
        result = _run(worker, process_id, config, envelope, args)
        session, state = _session(worker, process_id)
    finally:
        channel.close()

    env: Envelope = result["envelope"]
    summary = {
        "process_id": process_id,
        "pipeline": config["name"],
        "status": result["status"],
        "terminal_reason": result.get("terminal_reason", ""),
        "termination_message": result.get("termination_message", ""),
        "error": result.get("error"),
        "interrupt_kind": result.get("interrupt_kind"),
        "interrupt_id": result.get("interrupt_id"),
        # The last interrupt the loop returned at (as GetSessionState showed it then).
        "interrupt": result["interrupt"],
        "answered": result["answered"],
        "phases": result["phases"],
        "counters": {
            "agent_hop_count": env.agent_hop_count,
            "llm_call_count": env.llm_call_count,
            "iteration": env.iteration,
        },
        "current_stage": env.current_stage,
        "terminated": env.terminated,
        # The state dict's lowercase reason, as merged (e.g. max_loop_exceeded).
        "envelope_terminal_reason": env.terminal_reason,
        "ran": ran,
        "outputs": env.outputs,
        "session": session,
        "state": state,
        "retries": worker.retries,
        "already_committed": worker.already_committed,
    }
    print(json.dumps(summary, sort_keys=True), flush=True)
    if summary["status"] == "interrupted":
        return 2
    return 0 if summary["terminal_reason"] == "COMPLETED" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
