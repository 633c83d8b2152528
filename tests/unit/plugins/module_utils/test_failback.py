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
