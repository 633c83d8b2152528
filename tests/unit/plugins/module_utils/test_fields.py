import pytest

from ansible_collections.homelab.k8s_ha.plugins.module_utils.fields import (
    covers,
    fields_change,
    get_field,
    rollout_state,
    set_field,
    validate,
)
from ansible_collections.homelab.k8s_ha.plugins.module_utils.spread import (
    rollback_order,
    spread_fields,
)

DEPLOY = {
    "metadata": {"name": "coredns", "generation": 3},
    "spec": {"replicas": 1, "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
             "template": {"spec": {
                 "containers": [{"name": "coredns", "image": "coredns:1"}],
                 "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
                 "affinity": {"nodeAffinity": {"pin": "miniserver"}}}}},
}
LANE = {"label": "workload-lane", "values": ["primary", "secondary"],
        "taint": {"key": "workload-lane", "value": "secondary", "effect": "NoSchedule"}}
PROBE = {"httpGet": {"path": "/ready", "port": 8181}}


def test_paths_read_and_write_named_items():
    assert get_field(DEPLOY, "spec.template.spec.containers[coredns].image") == "coredns:1"
    assert get_field(DEPLOY, "spec.template.spec.containers[other].image") is None
    new = set_field(DEPLOY, "spec.template.spec.containers[coredns].readinessProbe", PROBE)
    assert new["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] == PROBE
    assert "readinessProbe" not in DEPLOY["spec"]["template"]["spec"]["containers"][0]  # a copy
    assert "affinity" not in set_field(DEPLOY, "spec.template.spec.affinity", None)["spec"]["template"]["spec"]


def test_bad_paths_name_the_field():
    assert validate({"metadata.labels": {}}) == ["fields: metadata.labels: only fields under spec can be set"]
    assert validate({"spec.a b": 1}) == ["fields: spec.a b: 'a b' is not KEY or KEY[NAME]"]
    assert validate({"spec.template.spec.containers[dns].resources": {}}, DEPLOY) == [
        "fields: spec.template.spec.containers[dns].resources: no item named dns; names: coredns"]
    assert validate({}) == ["fields: a mapping of field path to value is required"]


def test_server_defaults_are_no_difference():
    stored = dict(PROBE, timeoutSeconds=1, periodSeconds=10, successThreshold=1, failureThreshold=3)
    assert covers(stored, PROBE) and not covers(PROBE, stored)
    assert covers({"a": 1}, {"b": None}) and not covers({"b": 1}, {"b": None})
    assert not covers([1, 2], [1])


def test_fields_change_and_exact_rollback():
    fields = {"spec.replicas": 2, "spec.template.spec.topologySpreadConstraints": [{"maxSkew": 1}],
              "spec.template.spec.affinity": {"podAntiAffinity": {"x": 1}}}
    new, tracker, rollback = fields_change(DEPLOY, fields)
    assert tracker.changed_fields == sorted(fields)
    assert rollback == {"spec.replicas": 1, "spec.template.spec.topologySpreadConstraints": None,
                        "spec.template.spec.affinity": {"nodeAffinity": {"pin": "miniserver"}}}
    again, tracker2, rollback2 = fields_change(new, fields)
    assert not tracker2.has_difference and rollback2 == {} and again == new
    restored, _t, _r = fields_change(new, rollback, "exact")
    assert restored == DEPLOY


def test_an_empty_map_is_restored_exactly():
    """CoreDNS had ``resources: {}``; the apply added requests and limits. As a desired state
    ``{}`` is covered by any map, so only an exact compare restores it (issue 18)."""
    path = "spec.template.spec.containers[coredns].resources"
    before = set_field(DEPLOY, path, {})
    new, _t, rollback = fields_change(before, {path: {"requests": {"cpu": "50m"}}})
    assert rollback == {path: {}}
    kept, tracker, _r = fields_change(new, rollback)
    assert not tracker.has_difference and kept == new  # the fault: subset sees nothing to undo
    restored, tracker, _r = fields_change(new, rollback, "exact")
    assert tracker.changed_fields == [path] and restored == before
    assert not fields_change(restored, rollback, "exact")[1].has_difference  # the re-check finds nothing


def test_rollout_state():
    d = {"metadata": {"name": "x", "generation": 2}, "spec": {"replicas": 2},
         "status": {"observedGeneration": 2, "updatedReplicas": 2, "availableReplicas": 1, "replicas": 3}}
    assert rollout_state(d) == ("waiting", "x: 2/2 updated, 1 available, 3 total")
    d["status"].update(availableReplicas=2, replicas=2)
    assert rollout_state(d)[0] == "done"
    d["metadata"]["generation"] = 3
    assert rollout_state(d)[0] == "waiting"


def test_spread_fields_for_coredns_and_ingress():
    coredns = {"name": "coredns", "anti_affinity": "preferred", "replicas": 2, "container": "coredns",
               "readiness_probe": PROBE, "resources": {"requests": {"cpu": "50m"}}}
    fields = spread_fields(coredns, DEPLOY, LANE)
    assert fields["spec.replicas"] == 2
    assert fields["spec.template.spec.tolerations"][-1] == {
        "key": "workload-lane", "operator": "Equal", "value": "secondary", "effect": "NoSchedule"}
    anti = fields["spec.template.spec.affinity"]["podAntiAffinity"]
    assert anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"] == {
        "labelSelector": {"matchLabels": {"k8s-app": "kube-dns"}}, "topologyKey": "kubernetes.io/hostname"}
    assert fields["spec.template.spec.affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "workload-lane", "operator": "In", "values": ["primary", "secondary"]}]}]}
    assert fields["spec.template.spec.topologySpreadConstraints"] == [{
        "maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        # the new revision's pods only: a surge rollout cannot end with both on one node
        "matchLabelKeys": ["pod-template-hash"]}]
    assert fields["spec.template.spec.containers[coredns].readinessProbe"] == PROBE
    assert "spec.strategy" not in fields
    ingress = spread_fields({"name": "ingress", "anti_affinity": "required"}, DEPLOY, LANE)
    assert "requiredDuringSchedulingIgnoredDuringExecution" in ingress["spec.template.spec.affinity"]["podAntiAffinity"]
    assert "matchLabelKeys" not in ingress["spec.template.spec.topologySpreadConstraints"][0]  # one pod at a time
    assert ingress["spec.strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    # tolerating twice is not added twice
    tolerant = set_field(DEPLOY, "spec.template.spec.tolerations", fields["spec.template.spec.tolerations"])
    assert len(spread_fields(coredns, tolerant, LANE)["spec.template.spec.tolerations"]) == 2


def test_spread_fields_refuses_bad_input():
    with pytest.raises(ValueError, match="anti_affinity of x: 'sometimes'; allowed: required, preferred"):
        spread_fields({"name": "x", "anti_affinity": "sometimes"}, DEPLOY, LANE)
    with pytest.raises(ValueError, match="container of x: dns; the Deployment's containers: coredns"):
        spread_fields({"name": "x", "anti_affinity": "preferred", "container": "dns"}, DEPLOY, LANE)


def test_rollback_relaxes_anti_affinity_first_and_restores_the_strategy_last():
    assert rollback_order({"spec.replicas": 1, "spec.strategy": None}) == [
        {"spec.replicas": 1}, {"spec.strategy": None}]
    assert rollback_order({"spec.replicas": 1}) == [{"spec.replicas": 1}]
    pinned = {"nodeAffinity": {"pin": "miniserver"}}
    steps = rollback_order({"spec.template.spec.affinity": pinned, "spec.replicas": 1})
    assert steps == [{"spec.template.spec.affinity.podAntiAffinity": None},
                     {"spec.template.spec.affinity": pinned, "spec.replicas": 1}]
    # the relaxing step on a spread object: required anti-affinity gone, the lanes untouched
    spread = set_field(DEPLOY, "spec.template.spec.affinity", {
        "nodeAffinity": {"lanes": "both"}, "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": []}})
    relaxed, tracker, _r = fields_change(spread, steps[0])
    assert relaxed["spec"]["template"]["spec"]["affinity"] == {"nodeAffinity": {"lanes": "both"}}
    assert tracker.has_difference


def test_component_placement_and_strays():
    from ansible_collections.homelab.k8s_ha.plugins.module_utils.spread import component_placement, stray_pods
    comp = [{"name": "coredns", "namespace": "kube-system", "deployment": "coredns"}]

    def pod(ns, name, owner_kind, owner, phase="Running", ds=False):
        return {"namespace": ns, "name": name, "owner_kind": owner_kind, "owner_name": owner,
                "phase": phase, "daemonset": ds}
    pods = {"m": [pod("kube-system", "coredns-a-1", "ReplicaSet", "coredns-a"),
                  pod("apps", "arr-1", "ReplicaSet", "arr-x")],
            "w": [pod("kube-system", "coredns-a-2", "ReplicaSet", "coredns-a"),
                  pod("longhorn-system", "csi-1", "DaemonSet", "csi", ds=True),
                  pod("kube-system", "coredns-custom-1", "ReplicaSet", "coredns-custom-b", phase="Pending")]}
    assert component_placement(pods, comp, ["m", "w"])[0]["one_per_node"] is True
    pods["w"][0]["phase"] = "Pending"
    assert component_placement(pods, comp, ["m", "w"])[0]["nodes"] == ["m"]
    pods["w"].append(pod("apps", "qdrant-1", "ReplicaSet", "qdrant-x"))
    assert stray_pods(pods, "w", comp) == ["apps/qdrant-1", "kube-system/coredns-custom-1"]


def test_stage_one_and_two_of_strategy_a():
    web = set_field(DEPLOY, "spec.template.spec.nodeSelector", {"workload-lane": "primary", "kubernetes.io/os": "linux"})
    one = spread_fields({"name": "web", "anti_affinity": "preferred"}, web, LANE, lane_values=["primary"], tolerate=False)
    assert "spec.template.spec.tolerations" not in one
    assert one["spec.template.spec.affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == ["primary"]
    assert one["spec.template.spec.nodeSelector"] == {"workload-lane": None, "kubernetes.io/os": "linux"}
    after, _t, rollback = fields_change(web, one)
    assert after["spec"]["template"]["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"} or \
        after["spec"]["template"]["spec"]["nodeSelector"].get("workload-lane") is None
    assert rollback["spec.template.spec.nodeSelector"] == {"workload-lane": "primary", "kubernetes.io/os": "linux"}
    pinned = set_field(DEPLOY, "spec.template.spec.nodeName", "miniserver")
    with pytest.raises(ValueError, match="pinned with nodeName miniserver"):
        spread_fields({"name": "arr", "anti_affinity": "preferred"}, pinned, LANE)


def test_fields_become_a_strategic_merge_patch_for_an_overlay():
    from ansible_collections.homelab.k8s_ha.plugins.module_utils.fields import fields_patch
    patch = fields_patch("Deployment", "apps/v1", "web", {
        "spec.replicas": 2,
        "spec.template.spec.nodeSelector": {"workload-lane": None, "disk": "ssd"},
        "spec.template.spec.containers[web].resources": {"requests": {"cpu": "10m"}},
        "spec.template.spec.tolerations": None})
    assert patch == {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                     "spec": {"replicas": 2, "template": {"spec": {
                         "containers": [{"name": "web", "resources": {"requests": {"cpu": "10m"}}}],
                         "nodeSelector": {"workload-lane": None, "disk": "ssd"},
                         "tolerations": None}}}}
