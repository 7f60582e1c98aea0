"""A stand-in for the NOA task kit's `plan` and `run` (noop path), written from Warden's
reference of the kit (reference/noa-kit-and-kgents.md A.3, A.6): the same regexes, the same
standard-library calls (str.splitlines, re, json.dump, ThreadPoolExecutor, one evidence file per
task). The kit's own source is not vendored here; this is what bench/plans.ts compares with.

  python3 noa_kit_proxy.py plan --sot SOT --out PLAN
  python3 noa_kit_proxy.py run --plan PLAN --max-workers N      (every task noop, like --dry-run)
"""
import argparse, datetime, json, os, re, sys
from concurrent.futures import ThreadPoolExecutor

QUEUE_HEADER_RE = re.compile(r"^\s*\d+\.\s*\*\*Queue\s+([A-Z])\s+\u2014\s+(.+?)\*\*\s*$")
TASK_ID_RE = re.compile(r"`(TASK-[0-9]{3,})`")


def layer(tid):
    n = int(tid.split("-", 1)[1])
    for lo, hi, name in ((1, 21, "foundation"), (22, 29, "orchestration"), (30, 41, "platform"),
                         (42, 53, "services"), (54, 61, "monitoring")):
        if lo <= n <= hi:
            return name
    return "execution"


def plan(sot, out):
    with open(sot, "r", encoding="utf-8") as f:
        lines = f.read().splitlines()
    queues, in_g = [], False
    for line in lines:
        if not in_g:
            in_g = line.strip().startswith("### G. Execution Queue & Task Hooks")
            continue
        if line.startswith("## ") or (line.startswith("### ") and not line.strip().startswith("### G.")):
            break
        m = QUEUE_HEADER_RE.match(line)
        if m:
            queues.append({"name": f"Queue {m.group(1)} \u2014 {m.group(2).strip()}", "tasks": []})
            continue
        if queues and line.strip().startswith("- Tasks:"):
            for tid in TASK_ID_RE.findall(line):
                queues[-1]["tasks"].append({"id": tid, "title": tid, "layer": layer(tid)})
    doc = {"version": 1, "source": os.path.relpath(sot),
           "generated_at": datetime.datetime.utcnow().isoformat() + "Z", "queues": queues}
    if os.path.dirname(out):
        os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, ensure_ascii=False)
    print(f"[ok] plan written: {out}")


def now():
    return datetime.datetime.utcnow().isoformat() + "Z"


def run(plan_path, max_workers):
    with open(plan_path, "r", encoding="utf-8") as f:
        doc = json.load(f)
    run_ts = datetime.datetime.utcnow().strftime("%Y%m%d_%H%M%SZ")
    run_dir = os.path.join(os.path.dirname(plan_path), "runs", run_ts)
    logs = os.path.join(run_dir, "logs")
    os.makedirs(logs, exist_ok=True)
    started = now()

    def noop(queue_name, task):
        tid = task.get("id", "")
        ts = datetime.datetime.utcnow().strftime("%Y%m%d_%H%M%SZ")
        path = os.path.join(logs, f"{tid}_noop_{ts}.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"NOOP: {tid} in {queue_name} at {ts}\n")
        return {"task": tid, "queue": queue_name, "agent": "NoOpAgent", "status": "noop", "evidence": path}

    results = []
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        futures = [pool.submit(noop, q.get("name", ""), t) for q in doc.get("queues", []) for t in q.get("tasks", [])]
        for fut in futures:
            results.append(fut.result())
    summary = {"status": "ok" if all(r["status"] in ("ok", "noop") for r in results) else "error",
               "started": started, "ended": now(), "results": results}
    with open(os.path.join(run_dir, "run.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2, ensure_ascii=False)
    print(f"[ok] run summary written: {os.path.join(run_dir, 'run.json')}")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("plan"); a.add_argument("--sot", required=True); a.add_argument("--out", required=True)
    b = sub.add_parser("run"); b.add_argument("--plan", required=True); b.add_argument("--max-workers", default="4")
    args = p.parse_args()
    if args.cmd == "plan":
        plan(args.sot, args.out)
    else:
        run(args.plan, int(args.max_workers))
    sys.exit(0)
