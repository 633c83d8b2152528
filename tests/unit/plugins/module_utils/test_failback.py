import datetime

import pytest

from ansible_collections.homelab.k8s_ha.plugins.module_utils.failback import (
    failback_blockers,
    pod_requests,
    preferred_weights,
    quantity,
)

NOW = datetime.datetime(2026, 11, 22, 12, 0, 0, tzinfo=datetime.timezone.utc)
SONARR = {"containers": [{"name": "sonarr", "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}}],
          "tolerations": [{"key": "role", "operator": "Equal", "value": "backup", "effect": "PreferNoSchedule"}],
          "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
              {"weight": 100, "preference": {"matchExpressions": [
                  {"key": "workload-priority", "operator": "In", "values": ["primary"]}]}},
              {"weight": 10, "preference": {"matchExpressions": [
                  {"key": "workload-priority", "operator": "In", "values": ["backup"]}]}}]}}}


def node(name="w1", ready_for=600, unschedulable=False, taints=(), cpu="2", memory="4Gi", pods="110", priority="primary"):
    ready = {"type": "Ready", "status": "True" if ready_for is not None else "False",
             "lastTransitionTime": (NOW - datetime.timedelta(seconds=ready_for or 0)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    return {"metadata": {"name": name, "labels": {"workload-priority": priority}},
            "spec": {"unschedulable": unschedulable, "taints": list(taints)},
            "status": {"conditions": [ready], "allocatable": {"cpu": cpu, "memory": memory, "pods": pods}}}


def running(cpu, memory):
    return {"spec": {"containers": [{"name": "x", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]},
            "status": {"phase": "Running"}}


def test_quantities_and_requests_as_the_scheduler_counts_them():
    assert quantity("250m") == 0.25 and quantity("64Mi") == 64 * 2 ** 20 and quantity(2) == 2.0
    assert quantity("1e3") == 1000.0
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        quantity("lots")
    spec = {"containers": [{"resources": {"requests": {"cpu": "100m"}}}, {"resources": {"requests": {"cpu": "50m"}}}],
            "initContainers": [{"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}]}
    assert pod_requests(spec) == {"cpu": 0.5, "memory": 2 ** 30}


def test_a_healthy_preferred_node_lets_failback_evict():
    assert failback_blockers(SONARR, node(), [running("1", "1Gi")], NOW, 120) == []
    assert preferred_weights(SONARR, [node("w1"), node("w2", priority="backup"), node("w3", priority="gpu")]) == {
        "w1": 100, "w2": 10, "w3": 0}


@pytest.mark.parametrize("target, pods, reason", [
    (node(ready_for=None), [], "w1 is not Ready"),
    (node(ready_for=30), [], "w1 Ready for 30s only, less than the 120s stabilisation window"),
    (node(unschedulable=True), [], "w1: node is unschedulable (cordoned)"),
    (node(taints=[{"key": "maintenance", "effect": "NoSchedule"}]), [], "w1: untolerated taint maintenance:NoSchedule"),
    (node(cpu="1"), [running("900m", "0")], "w1: not enough cpu: requests 0.25, free 0.1 of 1"),
    (node(pods="1"), [running("0", "0")], "w1: no room for another pod: 1 of 1"),
])
def test_each_reason_the_descheduler_ignores_blocks_the_eviction(target, pods, reason):
    assert reason in failback_blockers(SONARR, target, pods, NOW, 120)


def app_pod(name, node_name, phase="Running", deleting=False, app="sonarr"):
    meta = {"name": name, "namespace": "media", "labels": {"app": app}}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-22T11:59:00Z"
    return {"metadata": meta, "spec": dict(SONARR, nodeName=node_name), "status": {"phase": phase}}


SONARR_APP = [{"namespace": "media", "name": "sonarr", "selector": {"app": "sonarr"}}]


def test_failback_plan_evicts_one_pod_per_app_only_towards_a_node_it_can_land_on():
    from ansible_collections.homelab.k8s_ha.plugins.module_utils.failback import failback_plan
    nodes = [node("w1"), node("w2", priority="backup")]
    away = [app_pod("sonarr-a", "w2"), app_pod("sonarr-b", "w2")]
    (d,) = failback_plan(SONARR_APP, nodes, away, NOW, 60)
    assert d["action"] == "evict" and d["pod"] == "sonarr-a" and (d["from"], d["to"]) == ("w2", "w1")

    # home already: nothing to do
    (d,) = failback_plan(SONARR_APP, nodes, [app_pod("sonarr-a", "w1")], NOW, 60)
    assert d["action"] == "none" and d["pod"] is None

    # the preferred node cordoned (the descheduler's flap): held with the reason
    (d,) = failback_plan(SONARR_APP, [node("w1", unschedulable=True), nodes[1]], away, NOW, 60)
    assert d["action"] == "hold" and d["reasons"] == ["w1: node is unschedulable (cordoned)"]

    # Ready for less than the window, NotReady, tainted, full
    (d,) = failback_plan(SONARR_APP, [node("w1", ready_for=20), nodes[1]], away, NOW, 60)
    assert d["action"] == "hold" and "less than the 60s stabilisation window" in d["reasons"][0]
    (d,) = failback_plan(SONARR_APP, [node("w1", ready_for=None), nodes[1]], away, NOW, 60)
    assert d["reasons"][0] == "w1 is not Ready"
    tainted = node("w1", taints=[{"key": "maintenance", "value": "yes", "effect": "NoSchedule"}])
    (d,) = failback_plan(SONARR_APP, [tainted, nodes[1]], away, NOW, 60)
    assert d["action"] == "hold" and "untolerated taint maintenance=yes:NoSchedule" in d["reasons"][0]
    full = [app_pod("big", "w1", app="other")]
    full[0]["spec"] = {"containers": [{"resources": {"requests": {"cpu": "1900m"}}}], "nodeName": "w1"}
    (d,) = failback_plan(SONARR_APP, nodes, away + full, NOW, 60)
    assert d["action"] == "hold" and "not enough cpu" in d["reasons"][0]


def test_failback_plan_waits_while_a_pod_of_the_app_is_not_running():
    from ansible_collections.homelab.k8s_ha.plugins.module_utils.failback import failback_plan
    nodes = [node("w1"), node("w2", priority="backup")]
    pods = [app_pod("sonarr-a", "w2"), app_pod("sonarr-new", "w1", phase="Pending"), app_pod("sonarr-old", "w2", deleting=True)]
    (d,) = failback_plan(SONARR_APP, nodes, pods, NOW, 60)
    assert d["action"] == "hold" and d["reasons"] == ["pods of the app not Running yet: sonarr-new, sonarr-old"]
