"""The filters the capi_rollout role verifies and plans its rollback with: what a node that
CAPI deleted with its Machine lacks when it registers again."""

from ansible_collections.homelab.k8s_ha.plugins.filter.capi import FilterModule

F = FilterModule().filters()
CARRY = {"node": "worker-1", "labels": {"workload-lane": "secondary"},
         "taints": [{"key": "workload-lane", "value": "secondary", "effect": "NoSchedule"}]}


def node(labels, taints=()):
    return {"metadata": {"name": "worker-1", "labels": dict(labels)}, "spec": {"taints": list(taints)}}


def test_a_bare_registration_lacks_the_lane_and_says_so_as_text():
    bare = node({"kubernetes.io/hostname": "worker-1"})
    assert F["capi_carry_missing"](bare, CARRY) == \
        "labels workload-lane=secondary; taints workload-lane=secondary:NoSchedule"
    assert F["capi_carry_lacking"](bare, CARRY) == {"labels": CARRY["labels"], "taints": CARRY["taints"]}


def test_a_node_with_its_lane_lacks_nothing_and_a_missing_node_is_named():
    back = node({"workload-lane": "secondary"}, CARRY["taints"])
    assert F["capi_carry_missing"](back, CARRY) == ""
    assert F["capi_carry_lacking"](back, CARRY) == {"labels": {}, "taints": []}
    assert F["capi_carry_missing"](None, CARRY) == "the node is gone"
    assert F["capi_carry_lacking"](None, CARRY) is None
    assert F["capi_carry_text"](CARRY) == "labels workload-lane=secondary; taints workload-lane=secondary:NoSchedule"
