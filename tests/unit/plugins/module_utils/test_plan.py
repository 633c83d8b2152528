import pytest

from ansible_collections.homelab.k8s_ha.plugins.module_utils.plan import (
    is_tuning,
    plan_differences,
    plan_id,
    plan_items,
    plan_report,
    snapshot_check,
)
from ansible_collections.homelab.k8s_ha.plugins.filter.evidence import plan_with_id
from ansible_collections.homelab.k8s_ha.plugins.filter.plan import FilterModule


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


def volume_item(**params):
    return {"object": "LonghornVolumes/longhorn-system", "module": "homelab.k8s_ha.longhorn_volume_replicas",
            "params": dict({"replicas_by_volume": {"pvc-a": 2}}, **params),
            "before": {"pvc-a": 1}, "after": {"pvc-a": 2}}


def test_tuning_knobs_do_not_change_the_plan_id():
    # a poll interval or a timeout changed between check and apply is the same plan
    assert plan_id([volume_item(poll_interval=2, wait_timeout=1800)]) == \
        plan_id([volume_item(poll_interval=5, wait_timeout=60)]) == plan_id([volume_item()])
    assert is_tuning("stop_timeout") and is_tuning("wait") and not is_tuning("replicas_by_volume")
    # runbook 004 binds its items and the cluster's name: a list of both
    assert plan_id([[volume_item(poll_interval=2)], "homelab"]) == plan_id([[volume_item(poll_interval=2)], "homelab"])
    # what changes does change it
    assert plan_id([volume_item()]) != plan_id([volume_item(replicas_by_volume={"pvc-a": 3})])


def test_plan_differences_name_the_items_and_fields():
    approved = [volume_item(poll_interval=2),
                {"object": "Node/gone", "params": {"name": "gone"}, "before": {}, "after": {"cordon": True}}]
    current = [dict(volume_item(poll_interval=9), before={"pvc-a": 1, "pvc-b": 1}),
               {"object": "Node/new", "params": {"name": "new"}, "before": {}, "after": {"cordon": True}}]
    assert plan_differences(approved, current) == [
        'LonghornVolumes/longhorn-system: before pvc-b: approved null, now 1',
        "Node/gone: in the approved plan, no longer to change",
        "Node/new: to change now, not in the approved plan",
    ]
    labels = [{"object": "Node/m", "params": {"name": "m"}, "before": {"labels": {"a": "1"}}, "after": {}}]
    now = [{"object": "Node/m", "params": {"name": "m"}, "before": {"labels": {"a": "1", "lane": "x"}}, "after": {}}]
    assert plan_differences(labels, now) == ['Node/m: before labels.lane: approved null, now "x"']
    assert plan_differences(labels, labels) == []
    # items of another shape (runbook 004's, the drill's) are named by their content
    assert plan_differences([{"machine": "m1"}], [{"machine": "m2"}]) == [
        '{"machine": "m1"}: in the approved plan, no longer to change',
        '{"machine": "m2"}: to change now, not in the approved plan']


def test_snapshot_check_names_what_differs():
    same = snapshot_check("worker-1", {"labels": {"a": "1"}}, {"labels": {"a": "1"}})
    assert same == {"name": "worker-1 equals its before-snapshot", "passed": True, "detail": "equal"}
    differs = snapshot_check("worker-1", {"labels": {"a": "1"}, "taints": []},
                             {"labels": {"a": "1"}, "taints": [{"key": "k"}]})
    assert differs["passed"] is False
    assert differs["detail"] == 'worker-1 differs: taints: now [{"key": "k"}], before []'


def test_lines_joins_with_real_line_breaks():
    lines = FilterModule().filters()["lines"]
    assert lines(["a", "b", "", 3]) == "a\nb\n\n3"
    assert lines("one text") == "one text"


def test_plan_with_id_finds_the_newest_check_run(tmp_path):
    for folder, pid in (("20260101T000000Z-p", "aaaa"), ("20260102T000000Z-p", "aaaa"), ("20260103T000000Z-p", "bbbb")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "plan.json").write_text('{"id": "%s", "items": []}' % pid)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "plan.json").write_text("{not json")
    assert plan_with_id(str(tmp_path), "aaaa")["folder"] == str(tmp_path / "20260102T000000Z-p")
    assert plan_with_id(str(tmp_path), "cccc") == {}
    assert plan_with_id(str(tmp_path / "missing"), "aaaa") == {}
