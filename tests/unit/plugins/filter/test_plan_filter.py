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
