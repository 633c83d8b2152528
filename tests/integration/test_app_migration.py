"""app_migration.yml, strategy A (active_active), on the two-node fixture with worker-1
uncordoned but lane-tainted: stage 1 keeps two replicas on miniserver, stage 2 puts one
on each node (placed by the real scheduler), both rolled back to the before-snapshot;
the app's HPA is paused and its Argo CD Application held on manual sync during the
window, then restored exactly; check mode writes nothing; an app that fails a safety
gate is refused."""

import json
import threading
import time

import pytest
import yaml

from observe import (
    LANE_TOLERATION,
    OPERATOR_USERS,
    audit_entries,
    audit_size,
    clear_lanes,
    evidence_runner,
    newest_evidence,
    set_lanes,
    writes,
)
from proof import proof
from upstream_crds import fetch

APPLY = "playbooks/app_migration.yml"
ROLLBACK = "playbooks/app_migration_rollback.yml"
PROBE = {"httpGet": {"path": "/", "port": 8080}}
WEB = {"apiVersion": "apps/v1", "kind": "Deployment",
       # Argo CD's tracking id: the Application web manages it (plugins/module_utils/managers.py)
       "metadata": {"name": "web", "namespace": "apps", "labels": {"homelab.k8s-ha/fixture": "migration"},
                    "annotations": {"argocd.argoproj.io/tracking-id": "web:apps/Deployment:apps/web"}},
       "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                    "nodeSelector": {"workload-lane": "primary"},
                    "containers": [{"name": "web", "image": "registry.example/web:1",
                                    "ports": [{"name": "http", "containerPort": 8080}],
                                    "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
                                    "readinessProbe": PROBE, "livenessProbe": PROBE}]}}}}
HPA = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
       "metadata": {"name": "web", "namespace": "apps", "labels": {"homelab.k8s-ha/fixture": "migration"}},
       "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 1, "maxReplicas": 3,
                "metrics": [{"type": "Resource", "resource": {
                    "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]}}
ARGO_APP = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "web", "namespace": "argocd", "labels": {"homelab.k8s-ha/fixture": "migration"}},
            "spec": {"project": "default",
                     "source": {"repoURL": "https://git.example/homelab.git", "path": "apps/web", "targetRevision": "main"},
                     "destination": {"server": "https://kubernetes.default.svc", "namespace": "apps"},
                     "syncPolicy": {"automated": {"prune": True, "selfHeal": True}}}}
SERVICE = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "web", "namespace": "apps", "labels": {"homelab.k8s-ha/fixture": "migration"}},
           "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}
PDB = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
       "metadata": {"name": "web", "namespace": "apps", "labels": {"homelab.k8s-ha/fixture": "migration"}},
       "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}}}


def web_nodes(c):
    pods = c.get_json("pods", "-n", "apps", "-l", "app=web")["items"]
    return sorted(p["spec"].get("nodeName", "") for p in pods
                  if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp"))


def web_spec(c):
    return c.get_json("deployment", "web", "-n", "apps")["spec"]


@pytest.fixture
def playbook_identity(identity):
    """Every playbook here runs as the app-migration family's ServiceAccount (rbac/app-migration.yml), with
    its token in K8S_AUTH_* as AWX's Kubernetes credential passes it."""
    return identity("app-migration")


@pytest.fixture
def migration(two_node, run_playbook, tmp_path):
    c = two_node
    set_lanes(c, uncordon=True)
    argo_crds = str(fetch("argocd"))  # Argo CD's own CRD (tests/cluster/upstream_crds.py)
    c.kubectl("apply", "--server-side", "-f", argo_crds)
    c.wait_established("applications.argoproj.io")
    c.kubectl("create", "namespace", "argocd", check=False)
    c.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                   "items": [WEB, SERVICE, PDB, HPA, ARGO_APP]}))
    c.kubectl("rollout", "status", "-n", "apps", "deployment/web", "--timeout=60s")
    # a GitOps checkout with the app's base, as the runbook's repository has it
    repo = tmp_path / "gitops"
    base = repo / "apps" / "base" / "web"
    base.mkdir(parents=True)
    (base / "deployment.yaml").write_text(json.dumps(WEB))
    (base / "kustomization.yaml").write_text("resources:\n  - deployment.yaml\n")
    run = evidence_runner(run_playbook, c, tmp_path / "evidence", APPLY, gitops_repo_dir=str(repo))
    run.repo = repo
    yield run
    c.kubectl("delete", "deployment,service,pdb,hpa", "-n", "apps", "-l", "homelab.k8s-ha/fixture=migration",
              "--wait=true")
    c.kubectl("delete", "-f", argo_crds, "--wait=true")
    clear_lanes(c)


def holds(c):
    """The HPA's spec and the Argo CD Application's sync policy, as the test compares them."""
    return (c.get_json("hpa", "web", "-n", "apps")["spec"],
            c.get_json("applications.argoproj.io", "web", "-n", "argocd")["spec"].get("syncPolicy"))


def stage(migration, c, number, **extra):
    """The safety proof of one stage of strategy A (proof.py's row ``app_migration A stage N``):
    check, apply, the same apply again, and (when the ``with`` ends) the rollback, with the
    GitOps checkout compared too. The body runs with the stage applied and verified."""
    # app as an AWX survey or a Semaphore variable carries it: "namespace/workload"
    args = dict({"app": "apps/web", "migration_strategy": "active_active", "stage": number}, **extra)
    folder = "primary-only" if number == 1 else "dual-lane"
    patch = "patch-topology-and-anti-affinity.yaml" if number == 1 else "patch-toleration-and-affinity.yaml"

    # the window's holds: taken by stage 1; stage 2 finds them in force (they stay through
    # the bake window) and holds nothing again
    holding = ["Application/web", "HorizontalPodAutoscaler/web"] if number == 1 else []

    # the Deployment's manager: its Application syncs automatically and selfHeals, which the
    # window's hold turns off before the stage's write (stage 1); stage 2 finds it on manual sync
    manager = "Argo CD Application argocd/web (annotation argocd.argoproj.io/tracking-id): " + (
        "held by this run (its automated sync off until the window's release)" if number == 1
        else "syncs by hand; the next sync puts the edit back")

    def planned(p):
        assert [i["object"] for i in p.plan["items"]] == holding + [
            "Deployment/web",
            f"File/apps/overlays/web/{folder}/kustomization.yaml", f"File/apps/overlays/web/{folder}/{patch}"]
        assert [i.get("manager") for i in p.plan["items"] if i["object"] == "Deployment/web"] == [manager]

    return proof(migration, c, "app_migration A stage %d" % number, APPLY, "app_migration", ROLLBACK,
                 "app_migration_rollback", repo=migration.repo, before_apply=planned, **args)


HEALTH = ["apps/web: its pods Ready", "apps/web: no container restarted since the run began",
          "apps/web: Service web has ready endpoints"]
PROBE_CHECK = "apps/web: GET /api/v1/namespaces/apps/services/web:80/proxy/ returns 200"


def verified(p):
    verify = json.loads((p.run_dir / "verify.json").read_text())
    assert all(chk["passed"] for chk in verify["checks"]), verify
    names = [chk["name"] for chk in verify["checks"]]
    assert all(h in names for h in HEALTH), names  # the app serves, not only runs where planned
    return dict((chk["name"], chk) for chk in verify["checks"])


def restart_after_the_gates_read(c, offset, pod):
    """In the background: once the run's safety gates have read the app's pods (the restart
    baseline, an audit event), ``pod``'s container restarts once (its status, as a kubelet
    writes it)."""
    def bump():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any(e["verb"] == "list" and e["objectRef"].get("resource") == "pods"
                   and "labelSelector=app%3Dweb" in e["requestURI"] and e["user"]["username"].startswith(OPERATOR_USERS)
                   for e in audit_entries(c, offset)):
                c.kubectl("patch", "pod", pod, "-n", "apps", "--subresource=status", "--type=json", "-p",
                          json.dumps([{"op": "replace", "path": "/status/containerStatuses/0/restartCount", "value": 1}]))
                return
            time.sleep(0.2)
    thread = threading.Thread(target=bump, daemon=True)
    thread.start()
    return thread


def rendered(c, repo, folder):
    """The Deployment the overlay renders (kubectl's built-in kustomize), as its spec."""
    out = c.kubectl("kustomize", str(repo / "apps" / "overlays" / "web" / folder)).stdout
    return yaml.safe_load(out)["spec"]


def same_placement_fields(overlay, live):
    """The overlay sets the fields the stage set live (an empty map counts as absent)."""
    for field in ("replicas", "strategy"):
        if field in overlay:
            assert overlay[field] == live[field], field
    for field in ("affinity", "tolerations", "topologySpreadConstraints", "nodeSelector"):
        assert (overlay["template"]["spec"].get(field) or None) == (live["template"]["spec"].get(field) or None), field


def test_strategy_a_stage_1_stage_2_and_rollback(migration, two_node):
    c = two_node
    before = web_spec(c)
    held_before = holds(c)

    offset = audit_size(c)
    with stage(migration, c, 1) as first:
        verified(first)
        assert web_nodes(c) == ["miniserver", "miniserver"]  # two replicas, still primary-only
        # held for the window (one write each) and kept through the bake window: the stage
        # does not release them; the same apply again held nothing (its stage had nothing to
        # change) (a write the API server refused, a conflict with the HPA controller's status
        # update that workload_fields retries, changed nothing and is not counted)
        held = [e["objectRef"]["resource"] for e in writes(c, offset) if e["objectRef"]["resource"] != "deployments"
                and e.get("responseStatus", {}).get("code", 200) < 400]
        assert sorted(held) == ["applications", "horizontalpodautoscalers"]
        hpa, sync = holds(c)
        assert hpa["behavior"]["scaleUp"]["selectPolicy"] == hpa["behavior"]["scaleDown"]["selectPolicy"] == "Disabled"
        assert "automated" not in (sync or {})
        report = (first.run_dir / "report.md").read_text()
        assert ("## Holds in force\n\n"
                "- HorizontalPodAutoscaler apps/web: scaling paused (both directions Disabled)\n"
                "- Application argocd/web: manual sync (automated sync removed)\n") in report, report
        assert "changes nothing; nothing to approve" in first.again.stdout
        # the GitOps overlay renders what the cluster now runs (commit 1 of the PR template),
        # also after the same apply again: the removal of the base's lane pin stays in it
        same_placement_fields(rendered(c, migration.repo, "primary-only"), web_spec(c))
        spec = web_spec(c)["template"]["spec"]
        assert "tolerations" not in spec and "workload-lane" not in spec.get("nodeSelector", {})
        assert spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
            "nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == ["primary"]

        # stage 2 with the runbook's "curl returns 200", through the API server's service proxy
        # (the pod network simulator answers for the pods)
        with stage(migration, c, 2, http_probe="web:80/") as second:
            checks = verified(second)
            assert checks[PROBE_CHECK]["detail"].startswith("200: apps/web-"), checks[PROBE_CHECK]
            assert "| %s | pass | 200: apps/web-" % PROBE_CHECK in (second.run_dir / "report.md").read_text()
            assert web_nodes(c) == ["miniserver", "worker-1"]  # the real scheduler's outcome
            said = " ".join(second.check.stdout.split())
            assert ("Holds in force already (they stay through the bake window): HorizontalPodAutoscaler apps/web:"
                    " scaling paused (both directions Disabled) Application argocd/web: manual sync") in said, said[-3000:]
            hpa, sync = holds(c)
            assert hpa["behavior"]["scaleUp"]["selectPolicy"] == hpa["behavior"]["scaleDown"]["selectPolicy"] == "Disabled"
            assert hpa["minReplicas"] == 1 and hpa["maxReplicas"] == 3  # the HPA itself untouched
            assert "automated" not in (sync or {})  # Argo CD on manual sync
            same_placement_fields(rendered(c, migration.repo, "dual-lane"), web_spec(c))
            doc = (migration.repo / "docs" / "runbooks" / "migrations").glob("web-*.md")
            text = next(doc).read_text()
            assert "active_active, stage 1" in text and "active_active, stage 2" in text
            assert "[pass] web runs on miniserver, worker-1" in text
            spec = web_spec(c)["template"]["spec"]
            assert LANE_TOLERATION in spec["tolerations"]
            assert "requiredDuringSchedulingIgnoredDuringExecution" in spec["affinity"]["podAntiAffinity"]

            # the same stage verified again while the app answers 500 and a container restarts
            # during the run: the verification fails, naming both
            pods = sorted(p["metadata"]["name"] for p in c.get_json("pods", "-n", "apps", "-l", "app=web")["items"])
            c.kubectl("annotate", "pod", pods[0], "-n", "apps", "pod-network-simulator.homelab.k8s-ha/http-status=500")
            c.kubectl("annotate", "pod", pods[1], "-n", "apps", "pod-network-simulator.homelab.k8s-ha/http-status=500")
            bumped = restart_after_the_gates_read(c, audit_size(c), pods[1])
            try:
                sick = migration(app="apps/web", migration_strategy="active_active", stage=2, http_probe="web:80/")
            finally:
                bumped.join()
                c.kubectl("annotate", "pod", pods[0], pods[1], "-n", "apps", "pod-network-simulator.homelab.k8s-ha/http-status-")
            said = " ".join(sick.stdout.split())
            assert sick.rc != 0, said[-3000:]
            assert ("Failed: apps/web: no container restarted since the run began; %s. STOP: the stage is applied"
                    % PROBE_CHECK) in said, said[-3000:]
            assert "[FAIL] apps/web: no container restarted since the run began: %s/web restarted 1 time" % pods[1] in said

        # stage 2 rolled back (proof.py compared every written object and file with stage 1's state);
        # stage 1's holds stay in force
        assert web_nodes(c) == ["miniserver", "miniserver"]
        assert holds(c) != held_before

    # stage 1 rolled back: its holds released, exactly as before
    assert holds(c) == held_before

    # stage 1 rolled back: the overlays and the migration page are gone
    assert web_nodes(c) == ["miniserver"]
    assert list((migration.repo / "apps" / "overlays").rglob("*.yaml")) == []  # the rendered files taken back
    assert list((migration.repo / "docs").rglob("*.md")) == []
    after = web_spec(c)
    for field in ("replicas", "strategy"):
        assert after[field] == before[field], field
    for field in ("affinity", "tolerations", "topologySpreadConstraints", "nodeSelector"):
        assert after["template"]["spec"].get(field) == before["template"]["spec"].get(field), field


def test_an_app_failing_a_gate_is_refused_before_approval(migration, two_node):
    c = two_node
    offset = audit_size(c)
    run = migration(app={"namespace": "apps", "workload": "homarr"}, migration_strategy="active_active", stage=1,
                    approve_plan="0000000000000000")
    assert run.rc != 0
    assert "Refused before the approval gate" in run.stdout
    assert "PodDisruptionBudget present and appropriate: no PodDisruptionBudget selects the app's pods" in run.stdout
    assert writes(c, offset) == []


RELEASE = "playbooks/app_migration_release.yml"


def test_a_stage_that_was_not_verified_keeps_its_holds_and_the_release_refuses(migration, two_node):
    """A stage whose rollout cannot finish (miniserver cordoned, worker-1 off the lane) fails
    with the holds in force: the release refuses it before anything is written, naming the
    rollback instead, and the rollback releases them."""
    c = two_node
    spec, held_before = web_spec(c), holds(c)
    args = {"app": "apps/web", "migration_strategy": "active_active", "stage": 1, "app_migration_rollout_timeout": 5}
    check = migration(check=True, **args)
    assert check.rc == 0, check.stdout[-3000:]
    plan = json.loads((newest_evidence(migration.evidence, "app_migration") / "plan.json").read_text())
    c.kubectl("cordon", "miniserver")
    try:
        failed = migration(approve_plan=plan["id"], **args)
        assert failed.rc != 0, failed.stdout[-3000:]
    finally:
        c.kubectl("uncordon", "miniserver")
    stage_dir = newest_evidence(migration.evidence, "app_migration")
    assert holds(c) != held_before
    assert "## Holds in force" not in (stage_dir / "report.md").read_text()  # a failed stage is rolled back

    offset = audit_size(c)
    refused = migration(RELEASE, check=True, release_from=str(stage_dir))
    said = " ".join(refused.stdout.split())
    assert refused.rc != 0 and writes(c, offset) == [], said[-3000:]
    assert ("%s: its stage was not verified (no verification ran). Its holds stay; roll the stage back with"
            " playbooks/app_migration_rollback.yml -e rollback_from=%s instead. Nothing was changed." % (
                stage_dir, stage_dir)) in said, said[-3000:]

    undo = migration(ROLLBACK, check=True, rollback_from=str(stage_dir))
    assert undo.rc == 0, undo.stdout[-3000:]
    undo_plan = json.loads((newest_evidence(migration.evidence, "app_migration_rollback") / "plan.json").read_text())
    undo = migration(ROLLBACK, rollback_from=str(stage_dir), approve_plan=undo_plan["id"])
    assert undo.rc == 0, undo.stdout[-3000:]
    assert holds(c) == held_before and web_spec(c)["template"]["spec"] == spec["template"]["spec"]
