"""The safety proof's comparisons (tests/safety_proof.py): the matrix fails when a rollback
leaves one field changed, and passes on what the API server changes by itself."""

import copy
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from safety_proof import (  # noqa: E402
    Row, field_diffs, files_not_restored, not_restored, off_limits, pod_names, surprise_pods, table, tolerates)

COREDNS = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "coredns", "namespace": "kube-system", "resourceVersion": "10", "generation": 1,
                        "annotations": {"deployment.kubernetes.io/revision": "1"}, "labels": {"k8s-app": "kube-dns"}},
           "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "coredns", "resources": {}}]}}},
           "status": {"replicas": 1}}
NAME = "deployments kube-system/coredns"


def after_rollback(**changes):
    obj = copy.deepcopy(COREDNS)
    obj["metadata"].update(resourceVersion="42", generation=3, annotations={"deployment.kubernetes.io/revision": "3"})
    obj["status"] = {"replicas": 2}
    for path, value in changes.items():
        node = obj
        *parents, last = path.split(".")
        for k in parents:
            node = node[k] if not k.isdigit() else node[int(k)]
        node[last] = value
    return obj


def test_bookkeeping_of_the_server_is_no_difference():
    assert not_restored({NAME: COREDNS}, {NAME: after_rollback()}, [NAME]) == []
    # the DaemonSet controller's count of template changes, as the Deployment's revision
    ds, name = copy.deepcopy(COREDNS), "daemonsets metallb-system/metallb-speaker"
    ds["metadata"]["annotations"] = {"deprecated.daemonset.template.generation": "1"}
    rolled = copy.deepcopy(ds)
    rolled["metadata"]["annotations"] = {"deprecated.daemonset.template.generation": "3"}
    assert not_restored({name: ds}, {name: rolled}, [name]) == []
    rolled["metadata"]["annotations"]["somebody/else"] = "x"
    assert not_restored({name: ds}, {name: rolled}, [name]) != []


def test_a_rollback_that_leaves_one_field_changed_fails_the_row():
    """The negative case: CoreDNS kept the requests the apply added (issue 18's finding)."""
    left = after_rollback(**{"spec.template.spec.containers.0.resources": {"requests": {"cpu": "50m"}}})
    diff = not_restored({NAME: COREDNS}, {NAME: left}, [NAME])
    assert diff == ['deployments kube-system/coredns: spec.template.spec.containers[0].resources.requests '
                    'was null, is {"cpu": "50m"}']
    row = Row("core_platform")
    row.check_writes, row.again_writes, row.rollback_check_writes, row.surprise = [], [], [], []
    row.rollback_diff = diff
    assert row.failures() == ["rollback diff: " + diff[0]]
    assert table([row]).splitlines()[-1] == "| core_platform | 0 | 0 | 0 | 1 | 0 |  |"


def test_created_and_not_deleted_or_deleted_and_not_created():
    assert not_restored({}, {NAME: COREDNS}, [NAME]) == [NAME + ": left behind (created by the run)"]
    assert not_restored({NAME: COREDNS}, {}, [NAME]) == [NAME + ": gone (deleted by the run)"]
    assert not_restored({}, {}, [NAME]) == []


def test_labels_and_annotations_count():
    relabelled = after_rollback(**{"metadata.labels": {"k8s-app": "kube-dns", "x": "y"}})
    assert not_restored({NAME: COREDNS}, {NAME: relabelled}, [NAME]) == [
        NAME + ": metadata.labels.x was null, is \"y\""]


def test_field_diffs_of_lists():
    assert field_diffs([1, 2], [1, 3]) == [("[1]", 2, 3)]
    assert field_diffs([1], [1, 2]) == [("", [1], [1, 2])]


def test_files_of_the_checkout():
    assert files_not_restored({"a": "1"}, {"a": "1"}) == []
    assert files_not_restored({"a": "1"}, {"a": "2", "b": ""}) == ["a: content differs", "b: left behind"]
    assert files_not_restored({"a": "1"}, {}) == ["a: gone"]


LANE = {"key": "workload-lane", "value": "secondary", "effect": "NoSchedule"}


@pytest.mark.parametrize("toleration, ok", [
    ({"key": "workload-lane", "operator": "Equal", "value": "secondary", "effect": "NoSchedule"}, True),
    ({"key": "workload-lane", "value": "secondary"}, True),  # Equal is the default; any effect
    ({"key": "workload-lane", "operator": "Exists"}, True),
    ({"operator": "Exists"}, True),  # tolerates everything
    ({"key": "workload-lane", "operator": "Equal", "value": "primary"}, False),
    ({"key": "workload-lane", "operator": "Exists", "effect": "NoExecute"}, False),
    ({"value": "secondary"}, False),  # an empty key needs Exists
])
def test_tolerates_as_the_api_does(toleration, ok):
    assert tolerates([toleration], LANE) is ok


def test_surprise_pods_are_the_new_ones_off_limits():
    nodes = [{"metadata": {"name": "worker-1"}, "spec": {"taints": [
        LANE, {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]}},
        {"metadata": {"name": "miniserver"}, "spec": {}}]

    def pod(name, node, tolerations=None, **meta):
        return {"metadata": dict({"name": name, "namespace": "apps"}, **meta),
                "spec": {"nodeName": node, "tolerations": tolerations or []}, "status": {"phase": "Running"}}

    before = pod_names([pod("old", "worker-1")])  # there before the run tainted its node: not placed by it
    after = off_limits([pod("old", "worker-1"), pod("new", "worker-1"), pod("ok", "worker-1", [LANE]),
                        pod("home", "miniserver"), pod("gone", "worker-1", deletionTimestamp="x")], nodes)
    assert after == ["apps/old on worker-1: workload-lane=secondary:NoSchedule",
                     "apps/new on worker-1: workload-lane=secondary:NoSchedule"]
    assert surprise_pods(before, after) == ["apps/new on worker-1: workload-lane=secondary:NoSchedule"]
