#!/usr/bin/env python
"""Benchmark (not a pass/fail test): the placement audit on a big cluster, beside the
runbook's kubectl + jq commands.

10 kwok nodes (one cordoned), 500 Deployments of 10 replicas (5,000 pods), a mix of
unpinned, nodeSelector- and affinity-pinned. Both sides answer runbook 000's questions
about the cordoned node: which pods on it no DaemonSet owns, and which workloads carry
tolerations or affinity. The audit answers more (the scheduler's filters per workload
and node). Each side's wall time and API requests (from the audit log) are printed and
written to .local/bench/placement_audit.json.

    .venv/bin/python tests/bench/placement_audit_bench.py [--deployments 500 --replicas 10 --nodes 10]
"""

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "cluster"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from observe import audit_entries, audit_size  # noqa: E402  pylint: disable=wrong-import-position
from localcluster import LocalCluster, log  # noqa: E402  pylint: disable=wrong-import-position

LABEL = {"homelab.k8s-ha/fixture": "bench"}
JQ_QUESTIONS = [
    # runbook 000: non-DaemonSet pods on the node
    ("pods", "get pods -A -o json",
     '[.items[] | select(.spec.nodeName == $n and (.metadata.ownerReferences[0].kind // "") != "DaemonSet")'
     ' | .metadata.namespace + "/" + .metadata.name] | length'),
    # runbook 000: workloads with tolerations, and workloads with affinity
    ("tolerations", "get deploy,sts,ds -A -o json",
     '[.items[] | select(.spec.template.spec.tolerations) | .metadata.name] | length'),
    ("affinity", "get deploy,sts -A -o json",
     '[.items[] | select(.spec.template.spec.affinity) | .metadata.name] | length'),
    # cordon and taints of the nodes
    ("nodes", "get nodes -o json",
     '[.items[] | {name: .metadata.name, unschedulable: .spec.unschedulable, taints: .spec.taints}] | length'),
]


def deployment(i, nodes):
    spec = {"containers": [{"name": "c", "image": "registry.example/bench:%d" % i}]}
    if i % 3 == 1:
        spec["nodeSelector"] = {"kubernetes.io/hostname": nodes[i % (len(nodes) - 1)]}
    elif i % 3 == 2:
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": "bench-group", "operator": "In", "values": ["a", "b"]}]}]}}}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "app-%03d" % i, "namespace": "bench", "labels": LABEL},
            "spec": {"replicas": REPLICAS, "selector": {"matchLabels": {"app": "app-%03d" % i}},
                     "template": {"metadata": {"labels": {"app": "app-%03d" % i}}, "spec": spec}}}


def requests_between(c, start, agent):
    return [e for e in audit_entries(c, start) if agent in e.get("userAgent", "").lower()]


def main():
    global REPLICAS  # pylint: disable=global-statement
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--deployments", type=int, default=500)
    ap.add_argument("--replicas", type=int, default=10)
    ap.add_argument("--nodes", type=int, default=10)
    a = ap.parse_args()
    REPLICAS = a.replicas
    c = LocalCluster()
    started = not c.is_up()
    if started:
        c.up()
    try:
        c.unload_fixture()
        nodes = ["bench-%02d" % i for i in range(a.nodes)]
        cordoned = nodes[-1]
        items = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench", "labels": LABEL}}]
        for i, name in enumerate(nodes):
            items.append({"apiVersion": "v1", "kind": "Node", "metadata": {
                "name": name, "annotations": {"kwok.x-k8s.io/node": "fake"},
                "labels": dict(LABEL, **{"kubernetes.io/hostname": name, "bench-group": "ab"[i % 2]})},
                "spec": {"unschedulable": name == cordoned}})
        c.kubectl("apply", "--server-side", "-f", "-",
                  input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
        for name in nodes:
            c.manage_node(name)
        deploys = [deployment(i, nodes) for i in range(a.deployments)]
        c.kubectl("apply", "--server-side", "-f", "-",
                  input=json.dumps({"apiVersion": "v1", "kind": "List", "items": deploys}))
        want = a.deployments * a.replicas
        t0 = time.monotonic()

        def running():
            pods = c.get_json("pods", "-n", "bench")["items"]
            return sum(1 for p in pods if p["status"].get("phase") == "Running")

        c.wait(f"{want} bench pods Running", lambda: running() >= want, 1800, interval=5)
        log(f"{want} pods Running in {time.monotonic() - t0:.0f} s")

        results = {"nodes": a.nodes, "deployments": a.deployments, "pods": want}
        # the audit, as a user runs it (ansible-playbook, module, one LIST per kind)
        env = dict(c.env(), ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".local" / "collections"),
                   RESULT_DIR=str(ROOT / ".local" / "bench" / "audit-result"),
                   ANSIBLE_LOCALHOST_WARNING="false")
        (ROOT / ".local" / "bench").mkdir(parents=True, exist_ok=True)
        shutil.rmtree(ROOT / ".local" / "bench" / "audit-result", ignore_errors=True)
        offset = audit_size(c)
        t = time.monotonic()
        subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(ROOT / "inventories" / "local"),
                        str(ROOT / "tests/integration/playbooks/placement_audit.yml"),
                        "-e", "audit_node=" + cordoned], env=env, check=True, capture_output=True)
        wall = time.monotonic() - t
        reqs = requests_between(c, offset, "python")
        audit = json.loads((ROOT / ".local" / "bench" / "audit-result" / "result.json").read_text())
        results["audit"] = {
            "wall_s": round(wall, 2), "api_requests": len(reqs),
            "lists": sorted(e["objectRef"].get("resource") for e in reqs if e["verb"] == "list"),
            "answers": {"non_daemonset_pods_on_cordoned": len(audit["non_daemonset_pods"][cordoned]),
                        "workloads": len(audit["workloads"]),
                        "could_land_on_cordoned": len(audit["could_land_on"][cordoned])}}

        # the runbook's kubectl + jq
        offset = audit_size(c)
        t = time.monotonic()
        answers = {}
        for name, get, query in JQ_QUESTIONS:
            out = subprocess.run(f"kubectl --kubeconfig={c.kubeconfig} {get} | jq --arg n {cordoned} '{query}'",
                                 shell=True, check=True, capture_output=True, text=True).stdout
            answers[name] = json.loads(out)
        wall = time.monotonic() - t
        reqs = requests_between(c, offset, "kubectl")
        results["kubectl_jq"] = {"wall_s": round(wall, 2), "api_requests": len(reqs), "answers": answers}

        out = ROOT / ".local" / "bench" / "placement_audit.json"
        out.write_text(json.dumps(results, indent=2))
        print(json.dumps(results, indent=2))
        print(f"\n{'':24}{'wall s':>8}{'API requests':>14}")
        for side in ("audit", "kubectl_jq"):
            print(f"{side:24}{results[side]['wall_s']:>8}{results[side]['api_requests']:>14}")
        print(f"written to {out}")
    finally:
        c.unload_fixture()
        if started:
            c.down()
    return 0


REPLICAS = 10

if __name__ == "__main__":
    sys.exit(main())
