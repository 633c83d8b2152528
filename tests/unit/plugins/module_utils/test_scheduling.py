import pytest

from ansible_collections.homelab.k8s_ha.plugins.module_utils.placement import audit
from ansible_collections.homelab.k8s_ha.plugins.module_utils.scheduling import (
    node_blockers,
    placement,
    requirement_matches,
    term_matches,
    toleration_tolerates,
)

CORDON = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
LANE = {"key": "workload-lane", "value": "secondary", "effect": "NoSchedule"}


def node(name, labels=None, taints=(), unschedulable=False):
    return {"metadata": {"name": name, "labels": dict(labels or {}, **{"kubernetes.io/hostname": name})},
            "spec": {"taints": list(taints), "unschedulable": unschedulable}}


MINI = node("miniserver", {"workload-lane": "primary", "cores": "8"})
W1 = node("worker-1", {"workload-lane": "secondary", "cores": "4"}, [CORDON, LANE], True)
NODES = [MINI, W1]


@pytest.mark.parametrize("tol, taint, ok", [
    ({"key": "workload-lane", "operator": "Equal", "value": "secondary", "effect": "NoSchedule"}, LANE, True),
    ({"key": "workload-lane", "value": "secondary"}, LANE, True),  # Equal by default, any effect
    ({"key": "workload-lane", "operator": "Equal", "value": "primary"}, LANE, False),
    ({"key": "workload-lane", "operator": "Exists"}, LANE, True),
    ({"key": "workload-lane", "operator": "Exists", "effect": "NoExecute"}, LANE, False),
    ({"operator": "Exists"}, LANE, True),  # empty key + Exists tolerates everything
    ({"operator": "Exists", "effect": "NoExecute"}, LANE, False),
    ({"operator": "Equal", "value": "secondary"}, LANE, False),  # empty key needs Exists
    ({"key": "other", "operator": "Exists"}, LANE, False),
])
def test_toleration_semantics(tol, taint, ok):
    assert toleration_tolerates(tol, taint) is ok


@pytest.mark.parametrize("req, ok", [
    ({"key": "workload-lane", "operator": "In", "values": ["primary", "x"]}, True),
    ({"key": "workload-lane", "operator": "In", "values": ["secondary"]}, False),
    ({"key": "missing", "operator": "In", "values": ["a"]}, False),
    ({"key": "workload-lane", "operator": "NotIn", "values": ["secondary"]}, True),
    ({"key": "missing", "operator": "NotIn", "values": ["a"]}, True),  # absent label passes NotIn
    ({"key": "workload-lane", "operator": "Exists"}, True),
    ({"key": "missing", "operator": "Exists"}, False),
    ({"key": "missing", "operator": "DoesNotExist"}, True),
    ({"key": "workload-lane", "operator": "DoesNotExist"}, False),
    ({"key": "cores", "operator": "Gt", "values": ["4"]}, True),
    ({"key": "cores", "operator": "Gt", "values": ["8"]}, False),
    ({"key": "cores", "operator": "Lt", "values": ["9"]}, True),
    ({"key": "workload-lane", "operator": "Gt", "values": ["1"]}, False),  # not an integer
    ({"key": "cores", "operator": "Gt", "values": ["1", "2"]}, False),  # needs exactly one value
    ({"key": "cores", "operator": "Near", "values": ["1"]}, False),
])
def test_requirement_operators(req, ok):
    assert requirement_matches(req, MINI["metadata"]["labels"]) is ok


def test_terms_are_ored_expressions_anded_and_fields_match_name():
    lane = {"key": "workload-lane", "operator": "In", "values": ["primary"]}
    name_is_w1 = {"key": "metadata.name", "operator": "In", "values": ["worker-1"]}
    labels = MINI["metadata"]["labels"]
    assert term_matches({"matchExpressions": [lane]}, labels, "miniserver")
    assert not term_matches({"matchExpressions": [lane], "matchFields": [name_is_w1]}, labels, "miniserver")
    assert term_matches({"matchFields": [name_is_w1]}, {}, "worker-1")
    assert not term_matches({}, labels, "miniserver")  # an empty term matches nothing
    spec = {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [lane]}, {"matchFields": [name_is_w1]}]}}}}
    assert placement(spec, NODES, if_schedulable=["worker-1"])["would_run_on"] == ["miniserver"]  # lane taint
    spec["tolerations"] = [{"key": "workload-lane", "operator": "Exists"}]
    assert placement(spec, NODES, if_schedulable=["worker-1"])["would_run_on"] == ["miniserver", "worker-1"]


def test_unguarded_pod_is_blocked_only_by_cordon_and_taints():
    reasons = node_blockers({}, W1)
    assert reasons == ["node is unschedulable (cordoned)",
                       "untolerated taint workload-lane=secondary:NoSchedule"]
    assert node_blockers({}, MINI) == []


def test_tolerating_the_cordon_taint_passes_the_unschedulable_filter():
    spec = {"tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
                             "effect": "NoSchedule"}, {"key": "workload-lane", "operator": "Exists"}]}
    assert node_blockers(spec, W1) == []


def test_node_selector_mismatch_is_named():
    spec = {"nodeSelector": {"kubernetes.io/hostname": "miniserver"}}
    assert placement(spec, NODES, if_schedulable=["worker-1"]) == {
        "may_run_on": ["miniserver"], "would_run_on": ["miniserver"],
        "blocked": {"worker-1": ["node is unschedulable (cordoned)",
                                 "nodeSelector kubernetes.io/hostname=miniserver does not match",
                                 "untolerated taint workload-lane=secondary:NoSchedule"]}}


def test_node_name_bypasses_cordon_and_noschedule_but_not_noexecute():
    spec = {"nodeName": "worker-1"}
    assert node_blockers(spec, W1) == []
    assert node_blockers(spec, MINI) == ["nodeName is worker-1"]
    evicting = node("w", taints=[{"key": "k", "effect": "NoExecute"}])
    assert node_blockers({"nodeName": "w"}, evicting) == ["untolerated taint k:NoExecute"]


def test_prefer_no_schedule_never_filters():
    soft = node("w2", taints=[{"key": "role", "value": "backup", "effect": "PreferNoSchedule"}])
    assert node_blockers({}, soft) == []


def test_daemonset_templates_get_the_controllers_tolerations():
    cordoned = node("w", taints=[CORDON], unschedulable=True)
    assert placement({}, [cordoned], kind="DaemonSet")["may_run_on"] == ["w"]
    assert placement({}, [cordoned], kind="Deployment")["may_run_on"] == []


def test_audit_finds_what_could_land_on_a_cordoned_node():
    lane_pinned = {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "workload-lane", "operator": "In", "values": ["primary"]}]}]}}}}
    cordoned_only = node("worker-1", {}, [CORDON], True)  # no lane taint yet
    workloads = [
        {"kind": "Deployment", "metadata": {"namespace": "apps", "name": "qdrant"},
         "spec": {"template": {"spec": {}}}},
        {"kind": "Deployment", "metadata": {"namespace": "apps", "name": "arr"},
         "spec": {"template": {"spec": {"nodeName": "miniserver"}}}},
        {"kind": "Deployment", "metadata": {"namespace": "apps", "name": "guarded"},
         "spec": {"template": {"spec": lane_pinned}}},
        {"kind": "DaemonSet", "metadata": {"namespace": "metallb-system", "name": "speaker"},
         "spec": {"template": {"spec": {}}}},
    ]
    facts = audit([MINI, cordoned_only], [], workloads)
    assert facts["if_schedulable"] == ["worker-1"]  # every cordoned node by default
    assert facts["could_land_on"] == {"worker-1": ["apps/qdrant"]}
    speaker = [w for w in facts["workloads"] if w["name"] == "speaker"][0]
    assert speaker["may_run_on"] == ["miniserver", "worker-1"]
