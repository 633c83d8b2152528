import pytest

from ansible_collections.homelab.k8s_ha.plugins.module_utils.plan import (
    plan_id,
    plan_items,
    plan_report,
)


def result(name, changed, before=None, after=None):
    r = {"item": {"name": name, "labels": {"workload-lane": "secondary"}}, "changed": changed}
    if changed:
        r["diff"] = {"before": before, "after": after}
    return r


RESULTS = [
    result("worker-1", True, {"labels": {"a": "1"}, "taints": []},
           {"labels": {"a": "1", "workload-lane": "secondary"},
            "taints": [{"key": "workload-lane", "value": "secondary", "effect": "NoSchedule"}]}),
    result("miniserver", False),
]


def test_items_keep_only_changes():
    items = plan_items(RESULTS)
    assert [i["object"] for i in items] == ["Node/worker-1"]
    assert items[0]["module"] == "homelab.k8s_ha.lane_node"


def test_id_is_stable_and_bound_to_content():
    items = plan_items(RESULTS)
    assert plan_id(items) == plan_id(plan_items(list(reversed(RESULTS))))
    assert len(plan_id(items)) == 16
    changed = plan_items(RESULTS)
    changed[0]["before"]["labels"]["someone-else"] = "was-here"  # the cluster moved on
    assert plan_id(changed) != plan_id(items)
    assert plan_id([]) != plan_id(items)


def test_failed_check_makes_no_plan():
    with pytest.raises(ValueError, match="failed check: boom"):
        plan_items([{"item": {"name": "x"}, "failed": True, "msg": "boom"}])


def test_report_shows_field_before_and_after():
    assert plan_report(plan_items(RESULTS)) == [
        "Node/worker-1 (homelab.k8s_ha.lane_node):",
        '  labels.workload-lane: null -> "secondary"',
        '  taints: [] -> [{"effect": "NoSchedule", "key": "workload-lane", "value": "secondary"}]',
    ]
    assert plan_report([]) == ["No changes: the cluster already matches."]


def test_file_items_and_their_unified_diff():
    from ansible_collections.homelab.k8s_ha.plugins.module_utils.plan import file_plan_items

    results = [
        {"changed": True, "dest": "/repo/apps/overlays/primary-lane/qdrant/kustomization.yaml",
         "diff": [{"before": "", "after": "kind: Kustomization\n"}]},
        {"changed": True, "path": "/repo/platform/apps/qdrant-app.yaml",
         "diff": [{"before": "  path: apps/base/qdrant\n", "after": "  path: apps/overlays/primary-lane/qdrant\n"}]},
        {"changed": False, "dest": "/repo/unchanged.yaml"},
    ]
    items = file_plan_items(results, "/repo")
    assert [i["object"] for i in items] == [
        "File/apps/overlays/primary-lane/qdrant/kustomization.yaml", "File/platform/apps/qdrant-app.yaml"]
    lines = plan_report(items)
    assert "  +kind: Kustomization" in lines
    assert "  -  path: apps/base/qdrant" in lines and "  +  path: apps/overlays/primary-lane/qdrant" in lines


def test_a_create_or_delete_without_a_diff_is_planned_from_its_parameters():
    from ansible_collections.homelab.k8s_ha.plugins.module_utils.plan import plan_items
    definition = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "db-standby"},
                  "spec": {"replicas": 0, "template": {"spec": {"tolerations": [{"key": "lane"}]}}}}
    created = plan_items([{"changed": True, "item": {"definition": definition, "name": "db-standby"},
                           "result": {"metadata": {"uid": "random"}}}], "Deployment", "kubernetes.core.k8s")
    assert created[0]["before"] == {}
    assert created[0]["after"] == {"apiVersion": "apps/v1", "kind": "Deployment", "metadata.name": "db-standby",
                                   "spec.replicas": 0, "spec.template.spec.tolerations": [{"key": "lane"}]}
    deleted = plan_items([{"changed": True, "item": {"name": "db-standby", "state": "absent"}}],
                         "Deployment", "kubernetes.core.k8s")
    assert (deleted[0]["before"], deleted[0]["after"]) == ({"exists": True}, {"exists": False})
