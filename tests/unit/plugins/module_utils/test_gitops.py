from ansible_collections.homelab.k8s_ha.plugins.module_utils.gitops import (
    app_targets,
    overlay_targets,
)

QDRANT = {"kind": "Deployment", "namespace": "apps", "name": "qdrant"}


def test_overlay_and_app_targets():
    assert [t["dest"] for t in overlay_targets([QDRANT], "/repo", "apps/overlays/primary-lane")] == [
        "/repo/apps/overlays/primary-lane/qdrant/kustomization.yaml",
        "/repo/apps/overlays/primary-lane/qdrant/patch-affinity.yaml"]
    have = {"/repo/platform/apps/qdrant-app.yaml"}
    other = dict(QDRANT, name="homarr")
    assert app_targets([QDRANT, other], "/repo", "platform/apps", isfile=have.__contains__) == [
        {"workload": QDRANT, "dest": "/repo/platform/apps/qdrant-app.yaml"}]


def test_stage_overlays_layer_dual_lane_on_primary_only_and_replace_whole_fields():
    import yaml
    from ansible_collections.homelab.k8s_ha.plugins.module_utils.gitops import stage_overlay_files
    patch = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
             "spec": {"replicas": 2, "template": {"spec": {
                 "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": []}},
                 "nodeSelector": {"workload-lane": None}}}}}
    first = stage_overlay_files("/repo", "apps/overlays", "apps/base", "web", "1", patch)
    assert [f["dest"] for f in first] == ["/repo/apps/overlays/web/primary-only/kustomization.yaml",
                                          "/repo/apps/overlays/web/primary-only/patch-topology-and-anti-affinity.yaml"]
    kustomization = yaml.safe_load(first[0]["content"])
    assert kustomization["resources"] == ["../../../base/web"]
    assert kustomization["patches"] == [{"path": "patch-topology-and-anti-affinity.yaml",
                                         "target": {"kind": "Deployment", "name": "web"}}]
    pod = yaml.safe_load(first[1]["content"])["spec"]["template"]["spec"]
    assert pod["affinity"]["$patch"] == "replace"  # set whole, as workload_fields does
    assert pod["nodeSelector"] == {"workload-lane": None}  # a removal merges
    second = stage_overlay_files("/repo", "apps/overlays", "apps/base", "web", "2", patch)
    assert second[0]["dest"] == "/repo/apps/overlays/web/dual-lane/kustomization.yaml"
    assert yaml.safe_load(second[0]["content"])["resources"] == ["../primary-only"]


def test_overlays_only_for_the_unguarded_an_overlay_can_guard():
    from ansible_collections.homelab.k8s_ha.plugins.module_utils.gitops import overlay_workloads
    rows = [
        {"kind": "Deployment", "name": "qdrant", "pinning": "none", "kept_off": {}},
        {"kind": "Deployment", "name": "anywhere", "pinning": "nodeSelector", "kept_off": {}},  # os=linux
        {"kind": "Deployment", "name": "arch", "pinning": "affinity", "kept_off": {}},  # its terms would be replaced
        {"kind": "Deployment", "name": "on-w1", "pinning": "nodeSelector", "kept_off": {"miniserver": ["nodeSelector"]}},
        {"kind": "Pod", "name": "stray", "pinning": "nodeName", "kept_off": {"miniserver": ["nodeName is worker-1"]}},
        {"kind": "CronJob", "name": "backup", "pinning": "none"},
    ]
    assert [w["name"] for w in overlay_workloads(rows, "miniserver")] == ["qdrant", "anywhere", "backup"]
