"""placement_audit_info and the Phase 0 read-only verification on the two-node fixture."""

import json

import pytest

from observe import audit_entries, audit_size

AUDIT_PLAYBOOK = "tests/integration/playbooks/placement_audit.yml"
DAEMONSETS = {"longhorn-csi-plugin", "engine-image-ei-db6c2b6f", "metallb-speaker"}


@pytest.fixture
def playbook_identity(identity):
    """Every playbook here runs as the audit family's ServiceAccount (rbac/audit.yml), with
    its token in K8S_AUTH_* as AWX's Kubernetes credential passes it."""
    return identity("audit")


def test_audit_reports_server2_state_and_pinning(two_node, run_playbook):
    offset = audit_size(two_node)
    run = run_playbook(two_node, AUDIT_PLAYBOOK, extra_vars={"audit_node": "worker-1"})
    assert run.rc == 0, run.stdout + run.stderr
    r = run.result
    assert r["changed"] is False
    nodes = {n["name"]: n for n in r["nodes"]}
    assert nodes["worker-1"]["unschedulable"] is True
    assert {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"} in nodes["worker-1"]["taints"]
    assert nodes["miniserver"]["unschedulable"] is False
    # server-2 runs exactly the three DaemonSets' pods and nothing else
    assert {p["owner_name"] for p in r["pods_by_node"]["worker-1"]} == DAEMONSETS
    assert r["non_daemonset_pods"]["worker-1"] == []
    pinning = {w["name"]: w["pinning"] for w in r["workloads"] if w["namespace"] == "apps"}
    assert pinning == {"arr": "nodeName", "arr-lts": "nodeName", "arr-lts2": "nodeName",
                       "homarr": "nodeSelector", "elasticsearch": "nodeSelector", "qdrant": "none"}
    # qdrant is the only workload that could land on worker-1 if it were uncordoned
    assert r["if_schedulable"] == ["worker-1"]
    assert r["could_land_on"] == {"worker-1": ["apps/qdrant"]}
    assert "If worker-1 were uncordoned, these could land on it: apps/qdrant" in r["report"]

    # Read-only, one LIST per kind: what the API server saw from the module.
    two_node.wait("audit log flushed", lambda: any(
        e["verb"] == "list" and e["objectRef"].get("resource") == "replicationcontrollers"
        for e in audit_entries(two_node, offset)), 30)
    mine = [e for e in audit_entries(two_node, offset) if "python" in e.get("userAgent", "").lower()]
    assert mine, "no request from the module reached the API server"
    assert {e["verb"] for e in mine} <= {"get", "list"}
    lists = sorted(e["objectRef"]["resource"] for e in mine if e["verb"] == "list")
    assert lists == sorted(["nodes", "pods", "deployments", "statefulsets", "daemonsets",
                            "replicasets", "jobs", "cronjobs", "replicationcontrollers"])


def test_audit_fails_clearly_on_unknown_node(two_node, run_playbook):
    run = run_playbook(two_node, AUDIT_PLAYBOOK,
                       extra_vars={"audit_node": "server-9", "audit_may_fail": True})
    assert run.result["failed"] is True
    assert "node: no node named 'server-9'" in run.result["msg"]
    assert "miniserver, worker-1" in run.result["msg"]


def test_phase0_verify_passes_on_guarded_cluster(two_node, run_playbook):
    run = run_playbook(two_node, "playbooks/phase0_verify.yml")
    assert run.rc == 0, run.stdout + run.stderr
    assert "worker-1 runs only DaemonSet pods" in run.stdout
    assert "Pods on worker-1: 3 (0 not from a DaemonSet)" in run.stdout


def test_phase0_verify_fails_when_server2_runs_an_app_pod(two_node, run_playbook):
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "stray-app", "namespace": "apps"},
           "spec": {"nodeName": "worker-1", "containers": [{"name": "c", "image": "x"}]}}
    two_node.kubectl("apply", "-f", "-", input=json.dumps(pod))
    try:
        run = run_playbook(two_node, "playbooks/phase0_verify.yml")
        assert run.rc != 0
        assert "Failed: worker-1 runs no pod that a DaemonSet does not own (stray-app)" in run.stdout
    finally:
        two_node.kubectl("delete", "pod", "stray-app", "-n", "apps", "--grace-period=0",
                         "--force", "--wait=true")


def _apps_only_on_miniserver(c):
    pods = c.get_json("pods", "-n", "apps")["items"]
    return len(pods) == 6 and all(p["spec"].get("nodeName") == "miniserver" for p in pods)


def test_audit_prediction_matches_the_real_scheduler(two_node, run_playbook):
    """Uncordon worker-1 and scale up: the scheduler puts qdrant there, as the audit
    predicted, and keeps the guarded apps on miniserver."""
    c = two_node
    run = run_playbook(c, AUDIT_PLAYBOOK, extra_vars={"audit_node": "worker-1"})
    predicted = {w["name"]: w["would_run_on"] for w in run.result["workloads"]
                 if w["namespace"] == "apps"}
    assert predicted["qdrant"] == ["miniserver", "worker-1"]
    assert predicted["homarr"] == ["miniserver"]

    def placed(app):
        return {p["spec"].get("nodeName") for p in
                c.get_json("pods", "-n", "apps", "-l", f"app={app}")["items"]
                if p["status"].get("phase") == "Running"}

    c.kubectl("uncordon", "worker-1")
    try:
        for app in ("qdrant", "homarr"):
            c.kubectl("scale", "deployment", app, "-n", "apps", "--replicas=6")
        c.wait("6 qdrant and 6 homarr pods Running", lambda: all(
            len([p for p in c.get_json("pods", "-n", "apps", "-l", f"app={app}")["items"]
                 if p["status"].get("phase") == "Running"]) == 6 for app in ("qdrant", "homarr")), 90)
        assert placed("qdrant") == set(predicted["qdrant"])  # spread by the scheduler
        assert placed("homarr") == set(predicted["homarr"])
    finally:
        for app in ("qdrant", "homarr"):
            c.kubectl("scale", "deployment", app, "-n", "apps", "--replicas=1")
        c.kubectl("cordon", "worker-1")
        for pod in c.get_json("pods", "-n", "apps", "-l", "app=qdrant")["items"]:
            if pod["spec"].get("nodeName") == "worker-1":
                c.kubectl("delete", "pod", pod["metadata"]["name"], "-n", "apps", "--wait=false")
        c.wait("apps back to one pod each, none on worker-1",
               lambda: _apps_only_on_miniserver(c), 90)


def test_the_read_only_audit_role_is_refused_every_write(two_node, identity, run_playbook):
    """The audit family's token reads everything the audit needs (the tests above ran with
    it) and is refused a write: lane_node's real update of a label gets 403 and the node
    keeps its labels."""
    c = two_node
    who = identity("audit")
    for verb, resource in (("patch", "nodes"), ("create", "pods/eviction"), ("update", "deployments"),
                           ("delete", "pods"), ("create", "leases")):
        can = c.kubectl("auth", "can-i", verb, resource, "--as", who.username, "-A", check=False).stdout.strip()
        assert can == "no", (verb, resource, can)
    before = c.get_json("nodes", "worker-1")["metadata"]["labels"]
    offset = audit_size(c)
    run = run_playbook(c, "tests/integration/playbooks/lane_node.yml",
                       extra_vars={"lane_args": {"name": "worker-1", "labels": {"audit-probe": "x"}}})
    assert run.rc != 0
    refused = [e for e in audit_entries(c, offset)
               if e["user"]["username"] == who.username and e["verb"] in ("update", "patch")]
    assert refused and all(e["responseStatus"]["code"] == 403 for e in refused), refused
    assert "403" in run.stdout or "Forbidden" in run.stdout, run.stdout[-2000:]
    assert c.get_json("nodes", "worker-1")["metadata"]["labels"] == before
