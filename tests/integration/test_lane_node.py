"""lane_node on the real API server: check mode writes nothing, apply, idempotence,
rollback to the before-snapshot, and bad input refused before any write."""

import pytest

from observe import audit_size, lane_snapshot, writes

PLAYBOOK = "tests/integration/playbooks/lane_node.yml"
LANE_TAINT = {"key": "workload-lane", "value": "secondary", "effect": "NoSchedule"}
APPLY = {"name": "worker-1", "labels": {"workload-lane": "secondary"}, "taints": [LANE_TAINT]}


@pytest.fixture
def clean_worker1(two_node):
    before = lane_snapshot(two_node)["worker-1"]
    yield before
    two_node.kubectl("label", "node", "worker-1", "workload-lane-", check=False)
    two_node.kubectl("taint", "node", "worker-1", "workload-lane:NoSchedule-", check=False)


def test_check_apply_idempotent_rollback(two_node, run_playbook, clean_worker1):
    c, before = two_node, clean_worker1
    offset = audit_size(c)
    check = run_playbook(c, PLAYBOOK, extra_vars={"lane_args": APPLY}, check=True)
    assert check.rc == 0, check.stdout + check.stderr
    r = check.result
    assert r["changed"] is True
    assert r["diff"]["before"]["taints"] == [{"key": "node.kubernetes.io/unschedulable",
                                              "effect": "NoSchedule"}]
    assert r["diff"]["after"]["taints"][-1] == LANE_TAINT
    assert r["diff"]["after"]["labels"]["workload-lane"] == "secondary"
    assert "workload-lane" not in r["diff"]["before"]["labels"]
    assert lane_snapshot(c)["worker-1"] == before  # nothing was written
    assert writes(c, offset, "nodes") == []

    offset = audit_size(c)
    apply = run_playbook(c, PLAYBOOK, extra_vars={"lane_args": APPLY})
    assert apply.rc == 0 and apply.result["changed"] is True
    now = lane_snapshot(c)["worker-1"]
    assert now["labels"]["workload-lane"] == "secondary"
    assert LANE_TAINT in now["taints"] and now["unschedulable"] is True
    sent = writes(c, offset, "nodes")
    assert len(sent) == 1 and sent[0]["verb"] == "patch"

    again = run_playbook(c, PLAYBOOK, extra_vars={"lane_args": APPLY})
    assert again.result["changed"] is False

    rollback = run_playbook(c, PLAYBOOK, extra_vars={"lane_args": apply.result["rollback"]})
    assert rollback.rc == 0 and rollback.result["changed"] is True
    assert lane_snapshot(c)["worker-1"] == before


@pytest.mark.parametrize("args, message", [
    ({"name": "worker-9", "labels": {"workload-lane": "secondary"}},
     "name: no node named 'worker-9'; nodes are: miniserver, worker-1"),
    ({"name": "worker-1", "labels": {"workload-lane": "second ary!"}},
     "labels: value 'second ary!' of 'workload-lane' must consist of"),
    ({"name": "worker-1", "taints": [{"key": "workload-lane", "effect": "NoScheduling"}]},
     "value of effect must be one of: NoSchedule, PreferNoSchedule, NoExecute, got: NoScheduling"),
    ({"name": "worker-1", "labels": {"bad key": "x"}}, "labels: key 'bad key'"),
    # several nodes in one call: the first is fine, the second unknown; nothing is written
    ({"nodes": [APPLY, {"name": "worker-9", "labels": {"workload-lane": "secondary"}}]},
     "nodes[1].name: no node named 'worker-9'; nodes are: miniserver, worker-1"),
])
def test_bad_input_fails_clearly_with_zero_writes(two_node, run_playbook, clean_worker1, args, message):
    c = two_node
    offset = audit_size(c)
    run = run_playbook(c, PLAYBOOK, extra_vars={"lane_args": args, "lane_may_fail": True})
    assert run.result["failed"] is True
    assert message in run.result["msg"]
    assert writes(c, offset, "nodes") == []
    assert lane_snapshot(c)["worker-1"] == clean_worker1
