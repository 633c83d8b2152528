"""The plan filter: id, items and report of one list of items, as plan_id and plan_report
make them, with a role's extra keys."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.k8s_ha.plugins.filter.plan import FilterModule
from ansible_collections.homelab.k8s_ha.plugins.module_utils.plan import plan_id, plan_report

PLAN = FilterModule().filters()["plan"]
ITEMS = [{"object": "Node/worker-1", "module": "homelab.k8s_ha.lane_node", "params": {"name": "worker-1"},
          "before": {"labels": {}}, "after": {"labels": {"workload-lane": "secondary"}}}]


def test_plan_is_the_id_items_and_report_of_the_items():
    assert PLAN(ITEMS) == {"id": plan_id(ITEMS), "items": ITEMS, "report": plan_report(ITEMS)}
    assert PLAN(ITEMS)["report"] == ["Node/worker-1 (homelab.k8s_ha.lane_node):",
                                     '  labels.workload-lane: null -> "secondary"']


def test_extra_keys_come_along_and_cannot_replace_the_plan():
    plan = PLAN(ITEMS, {"stage": "stage1", "id": "forged"})
    assert plan["stage"] == "stage1" and plan["id"] == plan_id(ITEMS)


@pytest.mark.parametrize("items, extra, message", [
    ({"object": "x"}, None, "items must be a list"),
    ([], ["volumes"], "extra must be a dict"),
])
def test_bad_input_names_the_argument(items, extra, message):
    with pytest.raises(AnsibleFilterError, match=message):
        PLAN(items, extra)


PER_DEFINITION = FilterModule().filters()["per_definition"]
PLAN_ITEMS = FilterModule().filters()["plan_items"]
PDB = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "sonarr-pdb", "namespace": "media"},
       "spec": {"maxUnavailable": 1}}
CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "policy", "namespace": "kube-system"},
      "data": {"a": "1"}}


def test_one_call_for_several_definitions_gives_each_its_result_as_a_loop_would():
    answer = {"changed": True, "result": {"results": [
        {"changed": True, "method": "create", "result": {}},
        {"changed": False, "method": "update", "result": {}, "diff": {}}]}}
    results = PER_DEFINITION(answer, [PDB, CM])
    assert [r["item"] for r in results] == [PDB, CM]
    assert [r["method"] for r in results] == ["create", "update"]
    # the plan then has the created PDB (no diff: a create is {} -> its fields) and not the unchanged ConfigMap
    items = PLAN_ITEMS(results, "Object", "kubernetes.core.k8s")
    assert [i["object"] for i in items] == ["PodDisruptionBudget/sonarr-pdb"]
    assert items[0]["after"]["spec.maxUnavailable"] == 1


def test_one_definition_is_answered_at_the_top_and_none_is_skipped():
    single = {"changed": True, "method": "create", "result": {}, "diff": {"before": {}, "after": {"a": 1}}}
    assert PER_DEFINITION(single, [CM]) == [dict(single, item=CM)]
    assert PER_DEFINITION({"skipped": True, "changed": False}, []) == []
    with pytest.raises(AnsibleFilterError, match="1 results for 2 definitions"):
        PER_DEFINITION({"changed": False, "result": {"results": [{"changed": False}]}}, [PDB, CM])
