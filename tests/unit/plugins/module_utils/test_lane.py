import pytest

from ansible_collections.homelab.k8s_ha.plugins.module_utils.lane import (
    desired_node,
    desired_taints,
    label_value_error,
    qualified_name_error,
    validate,
)

CORDON = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
LANE = {"key": "workload-lane", "value": "secondary", "effect": "NoSchedule"}


def worker1():
    return {"metadata": {"name": "worker-1", "resourceVersion": "7",
                         "labels": {"kubernetes.io/hostname": "worker-1"}},
            "spec": {"unschedulable": True, "taints": [dict(CORDON, timeAdded="2026-01-01T00:00:00Z")]}}


@pytest.mark.parametrize("key", ["workload-lane", "homelab.k8s-ha/lane", "a", "A_b.c-d",
                                 "x" * 63, "a.b/" + "x" * 63])
def test_valid_keys(key):
    assert qualified_name_error(key) is None


@pytest.mark.parametrize("key, part", [
    ("", "non-empty"), ("-lane", "start and end"), ("lane-", "start and end"),
    ("x" * 64, "at most 63"), ("Homelab.io/lane", "DNS subdomain"), ("/lane", "must not be empty"),
    ("a/b/c", "DNS subdomain"), ("work lane", "letters, digits"),
])
def test_invalid_keys(key, part):
    assert part in qualified_name_error(key)


@pytest.mark.parametrize("value, ok", [("primary", True), ("", True), ("a.b_c-d", True),
                                       ("secondary!", False), ("-x", False), ("x" * 64, False),
                                       (True, False), (1, False)])
def test_label_values(value, ok):
    assert (label_value_error(value) is None) is ok


def test_validate_names_every_bad_field():
    errors = validate({"workload-lane": "second ary", "ok": None, "bad key": "v"},
                      [{"key": "workload-lane", "value": "x", "effect": "NoScheduling"}])
    assert errors == [
        "labels: key 'bad key' name part 'bad key' must consist of letters, digits, '-', '_' or"
        " '.', and start and end with a letter or digit",
        "labels: value 'second ary' of 'workload-lane' must consist of letters, digits, '-', '_'"
        " or '.', and start and end with a letter or digit",
        "taints[0].effect 'NoScheduling' must be one of NoSchedule, PreferNoSchedule, NoExecute",
    ]


def test_apply_lane_labels_taint_keeps_cordon_and_gives_rollback():
    new, tracker, rollback = desired_node(worker1(), labels={"workload-lane": "secondary"},
                                          taints=[LANE])
    assert new["metadata"]["labels"]["workload-lane"] == "secondary"
    assert new["spec"]["taints"] == [dict(CORDON, timeAdded="2026-01-01T00:00:00Z"), LANE]
    assert new["spec"]["unschedulable"] is True
    assert tracker.changed_fields == ["labels", "taints"]
    assert tracker.get_diff()["after"]["taints"] == [CORDON, LANE]
    assert rollback == {"name": "worker-1", "labels": {"workload-lane": None},
                        "taints": [], "taints_state": "exact"}


def test_second_apply_is_no_change():
    once, _t, _r = desired_node(worker1(), labels={"workload-lane": "secondary"}, taints=[LANE])
    again, tracker, rollback = desired_node(once, labels={"workload-lane": "secondary"}, taints=[LANE])
    assert again == once and not tracker.has_difference and rollback == {"name": "worker-1"}


def test_rollback_parameters_restore_the_before_state():
    before = worker1()
    after, _t, rollback = desired_node(before, labels={"workload-lane": "secondary",
                                                       "kubernetes.io/hostname": None},
                                       taints=[LANE], cordon=False)
    restored, _t, _r = desired_node(after, labels=rollback.get("labels"), taints=rollback.get("taints"),
                                    taints_state=rollback.get("taints_state", "present"),
                                    cordon=rollback.get("cordon"))
    assert restored["metadata"]["labels"] == before["metadata"]["labels"]
    assert restored["spec"].get("unschedulable") is True
    # exact keeps the controller's cordon taint (with its timeAdded) and drops the lane taint
    assert restored["spec"]["taints"] == before["spec"]["taints"]


def test_taint_states():
    current = [CORDON, {"key": "workload-lane", "value": "old", "effect": "NoSchedule"},
               {"key": "gpu", "value": "true", "effect": "NoSchedule"}]
    assert desired_taints(current, [LANE], "present") == [CORDON, LANE, current[2]]
    assert desired_taints(current, [{"key": "workload-lane", "effect": "NoSchedule"}], "absent") == \
        [CORDON, current[2]]
    # exact: the listed taints and the controllers' own, nothing else
    assert desired_taints(current, [LANE], "exact") == [CORDON, LANE]
    assert desired_taints(current, [], "exact") == [CORDON]
    # same key, other effect: a different taint
    assert desired_taints([LANE], [dict(LANE, effect="NoExecute")], "present") == \
        [LANE, dict(LANE, effect="NoExecute")]


def test_cordon_and_uncordon():
    new, tracker, rollback = desired_node(worker1(), cordon=False)
    assert "unschedulable" not in new["spec"]
    assert tracker.get_diff() == {"before": {"unschedulable": True}, "after": {"unschedulable": False}}
    assert rollback == {"name": "worker-1", "cordon": True}
    same, tracker, _r = desired_node(worker1(), cordon=None)
    assert not tracker.has_difference and same == worker1()
