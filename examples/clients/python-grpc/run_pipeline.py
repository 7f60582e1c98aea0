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

Progress goes to stderr as JSON lines; the last line on stdout is the result as JSON:
``status``, ``terminal_reason``, the envelope's counters, the agents that ran (in order), the
outputs, and what GetSessionState says (``edge_traversals``). Exit status 0 when the run
ended COMPLETED, 1 otherwise.
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


def _log(event: JsonObject) -> None:
    print(json.dumps(event), file=sys.stderr, flush=True)


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--address",
        default=os.environ.get("KERNEL_GRPC_ADDRESS", "localhost:50051"),
        help="host:port of warden serve's gRPC listener (env KERNEL_GRPC_ADDRESS)",
    )
    parser.add_argument("--process-id", default=None, help="default: env_<random>")
    parser.add_argument(
        "--pipeline", choices=("sequential", "parallel", "chain"), default="sequential"
    )
    parser.add_argument("--join", choices=("all", "any"), default="all", help="parallel only")
    parser.add_argument("--stages", type=int, default=6, help="chain only")
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
    args = parser.parse_args(argv)

    if args.pipeline == "sequential":
        config, fns = _sequential()
    elif args.pipeline == "parallel":
        config, fns = _parallel(args.join)
    else:
        if args.stages < 1:
            parser.error("--stages must be at least 1")
        config, fns = _chain(args.stages)

    process_id = args.process_id or f"env_{secrets.token_hex(8)}"
    ran: List[str] = []
    agents = {name: FunctionAgent(name, fn, args.agent_delay, ran) for name, fn in fns.items()}
    reconnect = Reconnect(deadline_s=args.reconnect) if args.reconnect is not None else None
    channel = connect(args.address, reconnect)
    try:
        worker = PipelineWorker(channel, agents, reconnect=reconnect, log=_log)
        envelope = Envelope(envelope_id=process_id, raw_input=args.input)
        result = worker.execute(process_id, config, envelope, force=args.force)
        session: JsonObject = {}
        try:
            state = worker.session_state(process_id)
            session = {
                "current_stage": state.current_stage,
                "stage_order": list(state.stage_order),
                "edge_traversals": dict(state.edge_traversals),
                "terminated": state.terminated,
                "terminal_reason": pb.TerminalReason.Name(state.terminal_reason),
            }
        except grpc.RpcError as error:
            session = {"error": f"{error.code().name}: {error.details()}"}
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
        "counters": {
            "agent_hop_count": env.agent_hop_count,
            "llm_call_count": env.llm_call_count,
            "iteration": env.iteration,
        },
        "current_stage": env.current_stage,
        "terminated": env.terminated,
        "ran": ran,
        "outputs": env.outputs,
        "session": session,
        "retries": worker.retries,
        "already_committed": worker.already_committed,
    }
    print(json.dumps(summary, sort_keys=True), flush=True)
    return 0 if summary["terminal_reason"] == "COMPLETED" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
