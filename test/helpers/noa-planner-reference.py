#!/usr/bin/env python3
"""An independent reference planner for the differential test of `warden plan`.

Written from the contract (docs: reference/noa-kit-and-kgents.md, A.3 and A.4), not from
Warden's TypeScript: Python's own `re` with the kit's exact regexes, `str.splitlines()`,
`str.strip()`, `os.path.relpath` and `json.dumps(indent=2, ensure_ascii=False)`.

Usage: noa-planner-reference.py [--generated-at TS] SOT [SOT...]

With one SOT it prints that plan exactly as the kit writes it (no final newline). With several
it prints each plan followed by a NUL byte. `generated_at` is fixed (default below) so the
output is comparable byte for byte. A document that is not valid UTF-8 exits 1.
"""
import json
import os
import re
import sys

QUEUE_HEADER_RE = re.compile(r"^\s*\d+\.\s*\*\*Queue\s+([A-Z])\s+—\s+(.+?)\*\*\s*$")
TASK_ID_RE = re.compile(r"`(TASK-[0-9]{3,})`")
SECTION_G = "### G. Execution Queue & Task Hooks"
DEFAULT_GENERATED_AT = "2000-01-01T00:00:00.000000Z"


def layer_of(tid):
    n = int(tid[len("TASK-"):])
    if 1 <= n <= 21:
        return "foundation"
    if 22 <= n <= 29:
        return "orchestration"
    if 30 <= n <= 41:
        return "platform"
    if 42 <= n <= 53:
        return "services"
    if 54 <= n <= 61:
        return "monitoring"
    return "execution"


def parse_queues(text):
    queues = []
    current = None
    in_section = False
    for line in text.splitlines():
        if not in_section:
            if line.strip().startswith(SECTION_G):
                in_section = True
            continue
        if line.startswith("## ") or (
            line.startswith("### ") and not line.strip().startswith("### G.")
        ):
            break
        m = QUEUE_HEADER_RE.match(line)
        if m:
            current = {"name": "Queue " + m.group(1) + " — " + m.group(2).strip(), "tasks": []}
            queues.append(current)
            continue
        if current is not None and line.strip().startswith("- Tasks:"):
            for tid in TASK_ID_RE.findall(line):
                current["tasks"].append({"id": tid, "title": tid, "layer": layer_of(tid)})
    return queues


def plan_text(sot, generated_at):
    with open(sot, "r", encoding="utf-8") as f:
        text = f.read()
    plan = {
        "version": 1,
        "source": os.path.relpath(sot),
        "generated_at": generated_at,
        "queues": parse_queues(text),
    }
    return json.dumps(plan, indent=2, ensure_ascii=False)


def main(argv):
    generated_at = DEFAULT_GENERATED_AT
    if len(argv) >= 2 and argv[0] == "--generated-at":
        generated_at = argv[1]
        argv = argv[2:]
    if not argv:
        sys.stderr.write("usage: noa-planner-reference.py [--generated-at TS] SOT [SOT...]\n")
        return 2
    out = sys.stdout.buffer
    for sot in argv:
        try:
            body = plan_text(sot, generated_at)
        except UnicodeDecodeError as e:
            sys.stderr.write("[error] not valid UTF-8: %s: %s\n" % (sot, e))
            return 1
        out.write(body.encode("utf-8"))
        if len(argv) > 1:
            out.write(b"\0")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
