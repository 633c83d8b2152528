#!/usr/bin/env python
"""Benchmark (not a pass/fail test): runbook 003's failover drill for several
tolerationSeconds, beside the runbook's estimates.

For each value: active_passive.yml (guarded failback, window 3 s) is applied with that
tolerationSeconds on the three-worker fixture, failover_drill.yml runs the four scenarios
(the drill runs a failback pass every 5 s), and the rollback undoes the apply. The
node-monitor grace period is the cluster's (12 s here; k3s and kubeadm default to 40 s).
The drills' timings are printed as a table and written to .local/bench/failover_drill.json.

    .venv/bin/python tests/bench/failover_drill_bench.py [--tolerations 300 30 15]
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "cluster"))

from localcluster import LocalCluster, log  # noqa: E402  pylint: disable=wrong-import-position

ROWS = [("notready", "failover: node NotReady (after down)", "T+40s"),
        ("evicted", "failover: pods evicted (after down)", "T+5m00s default; about 1 min tuned"),
        ("failover", "failover: pods Running on w2 (after down)", "T+6m00s (about 6 min); about 1 min tuned"),
        ("ready", "failback: node Ready (after up)", "T+1m"),
        ("back", "failback: pods back on w1 (after Ready)", "about 5-5.5 min (6-7 min from power-on)")]


def playbook(c, evidence, name, check=False, **extra):
    extra = dict(extra, evidence_root=str(evidence))
    cmd = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(ROOT / "inventories" / "local-three-worker"),
           str(ROOT / "playbooks" / name), "-e", json.dumps(extra)] + (["--check"] if check else [])
    env = dict(c.env(), ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".local" / "collections"))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT, stdin=subprocess.DEVNULL, check=False)
    if proc.returncode:
        raise RuntimeError("%s failed:\n%s" % (name, proc.stdout[-4000:]))
    stem = name.replace(".yml", "")
    folder = sorted(p for p in evidence.iterdir() if p.name.endswith("-" + stem))[-1]
    return folder


def approved(c, evidence, name, **extra):
    """The check run, then the run that approves its plan id."""
    plan = json.loads((playbook(c, evidence, name, check=True, **extra) / "plan.json").read_text())
    if not plan.get("items"):
        return None
    return playbook(c, evidence, name, approve_plan=plan["id"], **extra)


def drill(c, evidence, seconds):
    common = {"active_passive_toleration_seconds": seconds, "active_passive_failback": "guarded",
              "active_passive_failback_window": 3, "active_passive_drill_pass_seconds": 5,
              "active_passive_drill_timeout": seconds + 300}
    approved(c, evidence, "active_passive.yml", **common)
    try:
        folder = approved(c, evidence, "failover_drill.yml", **common)
        return json.loads((folder / "verify.json").read_text())["timings"]
    finally:
        approved(c, evidence, "active_passive_rollback.yml", **common)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--tolerations", type=int, nargs="+", default=[300, 30, 15])
    a = ap.parse_args()
    c = LocalCluster()
    started = not c.is_up()
    if started:
        c.up()
    try:
        c.load_fixture("three-worker")
        out = ROOT / ".local" / "bench"
        out.mkdir(parents=True, exist_ok=True)
        results = {}
        for seconds in a.tolerations:
            log("drill with tolerationSeconds %d" % seconds)
            results[seconds] = drill(c, out / ("drill-%d" % seconds), seconds)
        (out / "failover_drill.json").write_text(json.dumps({"grace": c.grace, "timings": results}, indent=2))
        head = "| step | " + " | ".join("tolerationSeconds %d" % s for s in a.tolerations) + " | runbook |"
        print(head)
        print("|---" * (len(a.tolerations) + 2) + "|")
        for key, text, estimate in ROWS:
            print("| %s | %s | %s |" % (text, " | ".join(
                "%.1f s" % results[s][key] if key in results[s] else "-" for s in a.tolerations), estimate))
        print("node-monitor grace period: %d s (NODE_MONITOR_GRACE=%s)" % (c.grace, os.environ.get("NODE_MONITOR_GRACE", "")))
    finally:
        if started:
            c.down()


if __name__ == "__main__":
    main()
