"""phase0_guardrails.yml end to end on the two-node fixture: plan in check mode with
zero writes, the gate bound to the plan id, apply, idempotence, the runbook's own
verification commands, evidence, and rollback to the before-snapshot."""

import json
import threading
import time

import pytest

from audit import audit_entries, audit_size

APPLY = "playbooks/phase0_guardrails.yml"
ROLLBACK = "playbooks/phase0_guardrails_rollback.yml"
LANE_TAINT = {"key": "workload-lane", "value": "secondary", "effect": "NoSchedule"}


def lane_snapshot(cluster):
    out = {}
    for n in cluster.get_json("nodes")["items"]:
        out[n["metadata"]["name"]] = {
            "labels": n["metadata"].get("labels", {}),
            "taints": [{k: t[k] for k in ("key", "value", "effect") if k in t}
                       for t in n["spec"].get("taints", [])],
            "unschedulable": bool(n["spec"].get("unschedulable"))}
    return out


def writes(cluster, offset):
    """Requests from the run that wrote anything (server-side dry runs write nothing)."""
    return [e for e in audit_entries(cluster, offset)
            if e["verb"] in ("create", "update", "patch", "delete", "deletecollection")
            and "dryRun=All" not in e["requestURI"]
            and e["user"]["username"] == "homelab-admin"
            and "kubectl" not in e.get("userAgent", "")]


def newest(evidence, playbook):
    runs = sorted(p for p in evidence.iterdir() if p.name.endswith("-" + playbook))
    return runs[-1]


@pytest.fixture
def evidence(tmp_path):
    return tmp_path / "evidence"


@pytest.fixture
def phase0(two_node, run_playbook, evidence):
    def run(playbook=APPLY, check=False, **extra):
        extra.setdefault("evidence_root", str(evidence))
        extra.setdefault("rollback_evidence_root", str(evidence))
        extra.setdefault("guardrails_watch_seconds", 2)
        return run_playbook(two_node, playbook, extra_vars=extra, check=check)
    before = lane_snapshot(two_node)
    yield run
    two_node.kubectl("label", "node", "miniserver", "worker-1", "workload-lane-", check=False)
    two_node.kubectl("taint", "node", "worker-1", "workload-lane:NoSchedule-", check=False)
    assert lane_snapshot(two_node) == before


def test_plan_gate_apply_idempotent_rollback(two_node, phase0, evidence):
    c = two_node
    before = lane_snapshot(c)

    # 1. check mode: a plan, its id, the runbook's verification, zero writes
    offset = audit_size(c)
    check = phase0(check=True)
    assert check.rc == 0, check.stdout[-3000:]
    assert writes(c, offset) == []
    assert lane_snapshot(c) == before
    run_dir = newest(evidence, "phase0_guardrails")
    plan = json.loads((run_dir / "plan.json").read_text())
    assert [i["object"] for i in plan["items"]] == ["Node/miniserver", "Node/worker-1"]
    assert f"-e approve_plan={plan['id']}" in check.stdout
    verify = json.loads((run_dir / "verify.json").read_text())
    assert verify["could_land_on_secondary"] == ["apps/qdrant"]  # the only one
    report = (run_dir / "report.md").read_text()
    assert "check mode (nothing written to the cluster)" in report and plan["id"] in report
    assert 'labels.workload-lane: null -> "secondary"' in report

    # 2. the gate fails closed: a wrong id, an empty id, no answer without a terminal
    for extra in ({"approve_plan": "0000000000000000"}, {"approve_plan": ""}, {}):
        offset = audit_size(c)
        refused = phase0(**extra)
        assert refused.rc != 0, extra
        assert "Not approved" in refused.stdout, extra
        assert writes(c, offset) == [] and lane_snapshot(c) == before

    # 3. apply exactly the plan
    apply = phase0(approve_plan=plan["id"])
    assert apply.rc == 0, apply.stdout[-3000:]
    after = lane_snapshot(c)
    assert after["miniserver"]["labels"]["workload-lane"] == "primary"
    assert after["worker-1"]["labels"]["workload-lane"] == "secondary"
    assert LANE_TAINT in after["worker-1"]["taints"] and after["worker-1"]["unschedulable"]
    run_dir = newest(evidence, "phase0_guardrails")
    verify = json.loads((run_dir / "verify.json").read_text())
    assert verify["phase"] == "after" and all(chk["passed"] for chk in verify["checks"])
    assert verify["could_land_on_secondary"] == []  # the lane taint now guards worker-1
    rollback = json.loads((run_dir / "rollback.json").read_text())
    assert len(rollback["lane_changes"]) == 2

    # the runbook's own verification commands print what it expects
    cols = c.kubectl("get", "nodes", "-o",
                     "custom-columns=NAME:.metadata.name,TAINTS:.spec.taints,"
                     "UNSCHEDULABLE:.spec.unschedulable").stdout
    w1 = [line for line in cols.splitlines() if line.startswith("worker-1")][0]
    assert "key:workload-lane value:secondary" in w1 and w1.rstrip().endswith("true")
    pods = c.kubectl("get", "pods", "-A", "-o", "jsonpath={range .items[?(@.spec.nodeName!=\"\")]}"
                     "{.metadata.namespace}{\"\\t\"}{.metadata.name}{\"\\t\"}{.spec.nodeName}{\"\\t\"}"
                     "{.metadata.ownerReferences[0].kind}{\"\\n\"}{end}").stdout
    on_w1 = [row.split("\t") for row in pods.splitlines() if row.split("\t")[2] == "worker-1"]
    assert on_w1 and all(row[3] == "DaemonSet" for row in on_w1)

    # 4. a second apply changes nothing (no approval needed for an empty plan)
    again = phase0()
    assert again.rc == 0 and "changed=0" in again.stdout

    # 5. rollback: plan, approve, apply; the nodes equal the before-snapshot
    rb_check = phase0(ROLLBACK, check=True)
    assert rb_check.rc == 0, rb_check.stdout[-3000:]
    rb_plan = json.loads((newest(evidence, "phase0_guardrails_rollback") / "plan.json").read_text())
    assert rb_plan["items"]
    rb = phase0(ROLLBACK, approve_plan=rb_plan["id"])
    assert rb.rc == 0, rb.stdout[-3000:]
    assert lane_snapshot(c) == before


def test_stop_condition_reports_new_pending_pods_and_the_rollback(two_node, phase0, evidence):
    c = two_node
    check = phase0(check=True)
    assert check.rc == 0, check.stdout[-3000:]
    plan = json.loads((newest(evidence, "phase0_guardrails") / "plan.json").read_text())
    stray = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "cannot-schedule", "namespace": "apps"},
             "spec": {"nodeSelector": {"workload-lane": "nowhere"},
                      "containers": [{"name": "c", "image": "x"}]}}

    def during_the_watch():
        time.sleep(8)  # the playbook is past its plan by then, and watching
        c.kubectl("apply", "-f", "-", input=json.dumps(stray))

    helper = threading.Thread(target=during_the_watch)
    helper.start()
    try:
        run = phase0(approve_plan=plan["id"], guardrails_watch_seconds=25)
        helper.join()
        assert run.rc != 0
        assert "no pod newly Pending since the apply" in run.stdout
        assert "apps/cannot-schedule" in run.stdout
        assert "STOP: the change is applied" in run.stdout
        assert "playbooks/phase0_guardrails_rollback.yml --check" in run.stdout
        run_dir = newest(evidence, "phase0_guardrails")
        verify = json.loads((run_dir / "verify.json").read_text())
        failed = {chk["name"]: chk["detail"] for chk in verify["checks"] if not chk["passed"]}
        assert failed["no pod newly Pending since the apply"] == "apps/cannot-schedule"
        assert any(name.startswith("no FailedScheduling event") and "cannot-schedule" in detail
                   for name, detail in failed.items())
        # the rollback is recorded, so the documented command can undo the change
        assert len(json.loads((run_dir / "rollback.json").read_text())["lane_changes"]) == 2
    finally:
        helper.join()
        c.kubectl("delete", "pod", "cannot-schedule", "-n", "apps", "--ignore-not-found", "--wait=true")
