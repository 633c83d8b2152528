import pytest

from ansible_collections.homelab.k8s_ha.plugins.module_utils.strategies import (
    dual_deployments,
    stage_handover,
)

LANE = {"label": "workload-lane", "values": ["primary", "secondary"],
        "taint": {"key": "workload-lane", "value": "secondary", "effect": "NoSchedule"}}
TOLERATE = {"key": "workload-lane", "operator": "Equal", "value": "secondary", "effect": "NoSchedule"}


def app(**pod):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "notes-db", "namespace": "apps", "uid": "u1", "resourceVersion": "7",
                         "labels": {"app": "notes-db"},
                         "annotations": {"deployment.kubernetes.io/revision": "3", "team": "home"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "notes-db"}},
                     "strategy": {"type": "RollingUpdate"},
                     "template": {"metadata": {"labels": {"app": "notes-db"}},
                                  "spec": dict({"containers": [{"name": "db", "image": "postgres:16"}],
                                                "nodeSelector": {"workload-lane": "primary", "disk": "ssd"}},
                                               **pod)}},
            "status": {"replicas": 1}}


def test_the_pair_is_pinned_one_lane_each_at_zero_replicas_with_recreate():
    primary, standby = dual_deployments(app(), LANE)
    assert [primary["metadata"]["name"], standby["metadata"]["name"]] == ["notes-db-primary", "notes-db-standby"]
    for side, obj, lanes in (("primary", primary, ["primary"]), ("standby", standby, ["secondary"])):
        spec = obj["spec"]
        assert spec["replicas"] == 0 and spec["strategy"] == {"type": "Recreate"}
        assert spec["selector"] == {"matchLabels": {"app": "notes-db", "role": side}}
        assert spec["template"]["metadata"]["labels"] == {"app": "notes-db", "role": side}
        pod = spec["template"]["spec"]
        assert pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "workload-lane", "operator": "In", "values": lanes}]}]}
        assert pod["nodeSelector"] == {"disk": "ssd"}  # the lane pin goes, other keys stay
        assert "status" not in obj and "uid" not in obj["metadata"] and "resourceVersion" not in obj["metadata"]
        assert obj["metadata"]["annotations"] == {"team": "home", "homelab.k8s-ha/made-from": "notes-db"}
    assert "tolerations" not in primary["spec"]["template"]["spec"]
    assert standby["spec"]["template"]["spec"]["tolerations"] == [TOLERATE]


def test_refused_pins_and_selectors():
    with pytest.raises(ValueError, match="nodeName miniserver"):
        dual_deployments(app(nodeName="miniserver"), LANE)
    taken = app()
    taken["spec"]["selector"]["matchLabels"]["role"] = "primary"
    with pytest.raises(ValueError, match="already has role"):
        dual_deployments(taken, LANE)


def test_each_stage_hands_the_writer_on():
    assert stage_handover("notes-db", "1") == {"giver": "notes-db", "name": "notes-db-primary", "replicas": 1}
    assert stage_handover("notes-db", "failover") == {
        "giver": "notes-db-primary", "name": "notes-db-standby", "replicas": 1}
    assert stage_handover("notes-db", "failback") == {
        "giver": "notes-db-standby", "name": "notes-db-primary", "replicas": 1}
    with pytest.raises(ValueError, match="allowed for controlled_failover: 1, failback, failover"):
        stage_handover("notes-db", "2")


def test_hybrid_keeps_the_primary_pinned_and_adds_the_sidecar():
    from ansible_collections.homelab.k8s_ha.plugins.module_utils.strategies import hybrid_fields
    probe = {"tcpSocket": {"port": 9000}}
    sidecar = {"name": "replicate", "image": "registry.example/replicator:1", "args": ["--dest", "queue"],
               "readinessProbe": probe, "livenessProbe": probe,
               "resources": {"requests": {"cpu": "5m", "memory": "16Mi"}}}
    fields = hybrid_fields(app(), LANE, sidecar)
    assert [c["name"] for c in fields["spec.template.spec.containers"]] == ["db", "replicate"]
    assert fields["spec.template.spec.affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "workload-lane", "operator": "In", "values": ["primary"]}]}]}
    assert fields["spec.template.spec.nodeSelector"] == {"workload-lane": None, "disk": "ssd"}
    # a rerun replaces its own sidecar instead of adding a second one
    again = app()
    again["spec"]["template"]["spec"]["containers"].append(dict(sidecar, image="old"))
    assert [c["image"] for c in hybrid_fields(again, LANE, sidecar)["spec.template.spec.containers"]] == [
        "postgres:16", "registry.example/replicator:1"]
    with pytest.raises(ValueError, match="the app's own container"):
        hybrid_fields(app(), LANE, dict(sidecar, name="db"))
    with pytest.raises(ValueError, match="no livenessProbe, requests.memory; the safety gates"):
        hybrid_fields(app(), LANE, {"name": "r", "image": "x", "readinessProbe": probe,
                                    "resources": {"requests": {"cpu": "1m"}}})
    with pytest.raises(ValueError, match="name and image is required"):
        hybrid_fields(app(), LANE, {"name": "replicate"})


def test_the_sidecar_check_wants_it_ready_in_every_live_pod():
    from ansible_collections.homelab.k8s_ha.plugins.module_utils.strategies import sidecar_check

    def pod(name, ready=True, terminating=False):
        meta = {"name": name}
        if terminating:
            meta["deletionTimestamp"] = "2026-11-22T01:00:00Z"
        return {"metadata": meta, "status": {"containerStatuses": [
            {"name": "db", "ready": True}, {"name": "replicate", "ready": ready}]}}
    assert sidecar_check([pod("a"), pod("old", ready=False, terminating=True)], "replicate")["passed"]
    failed = sidecar_check([pod("a", ready=False)], "replicate")
    assert not failed["passed"] and failed["detail"] == "not in: a"
    assert not sidecar_check([], "replicate")["passed"]
