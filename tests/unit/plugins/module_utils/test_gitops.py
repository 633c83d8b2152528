from ansible_collections.homelab.k8s_ha.plugins.module_utils.gitops import (
    app_targets,
    overlay_targets,
    written_files,
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


def test_written_files_keep_prior_content_only_for_files_that_existed():
    stats = [{"item": {"dest": "/r/new.yaml"}, "stat": {"exists": False}},
             {"item": {"dest": "/r/app.yaml"}, "stat": {"exists": True}},
             {"item": {"dest": "/r/same.yaml"}, "stat": {"exists": True}}]
    results = [
        {"item": {"dest": "/r/new.yaml"}, "changed": True, "diff": [{"before": "", "after": "x"}]},
        {"item": {"dest": "/r/app.yaml"}, "changed": True, "diff": {"before": "path: a\n", "after": "path: b\n"}},
        {"item": {"dest": "/r/same.yaml"}, "changed": False},
    ]
    assert written_files(results, stats) == [
        {"path": "/r/new.yaml", "existed": False, "content": ""},
        {"path": "/r/app.yaml", "existed": True, "content": "path: a\n"}]
