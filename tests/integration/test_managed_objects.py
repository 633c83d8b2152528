"""Who manages the objects a playbook edits live (plugins/module_utils/managers.py), on runbook
003's cluster, which Flux manages: a live edit of a Deployment that a Flux Kustomization or an
Argo CD Application with automated sync puts back is refused before any write, naming the
manager and what to do; once the manager is suspended (Flux) or syncs by hand (Argo CD), the
plan goes ahead and shows the manager of each object in the plan and in report.md. The
managers' objects are the upstream CRDs' (tests/cluster/upstream_crds.py), validated by the
API server, and the playbooks run as the active-passive family's ServiceAccount."""

import json
import re
import subprocess

import pytest

from observe import audit_size, newest_evidence, writes
from upstream_crds import fetch

APPLY = "playbooks/active_passive.yml"
FLUX_LABELS = {"kustomize.toolkit.fluxcd.io/name": "media", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}
TRACKING = {"argocd.argoproj.io/tracking-id": "prowlarr:apps/Deployment:media/prowlarr"}
KUSTOMIZATION = {
    "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
    "metadata": {"name": "media", "namespace": "flux-system"},
    "spec": {"interval": "10m", "path": "./apps/media", "prune": True,
             "sourceRef": {"kind": "GitRepository", "name": "homelab"}}}
APPLICATION = {
    "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
    "metadata": {"name": "prowlarr", "namespace": "argocd"},
    "spec": {"project": "default",
             "source": {"repoURL": "https://git.example/homelab.git", "path": "apps/prowlarr", "targetRevision": "main"},
             "destination": {"server": "https://kubernetes.default.svc", "namespace": "media"},
             "syncPolicy": {"automated": {"selfHeal": True, "prune": True}}}}


@pytest.fixture
def playbook_identity(identity):
    return identity("active-passive")


def one_line(stdout):
    return re.sub(r"\s*\n\s*", " ", stdout)


@pytest.fixture(scope="module")
def managed(three_worker):
    """sonarr in a Flux Kustomization (its owner labels), prowlarr in an Argo CD Application
    (its tracking id), both managers reconciling on their own."""
    c = three_worker
    crds = [str(fetch(name)) for name in ("flux-kustomize", "flux-helm", "argocd")]
    for folder in crds:
        c.kubectl("apply", "--server-side", "-f", folder)
    c.wait_established("kustomizations.kustomize.toolkit.fluxcd.io", "helmreleases.helm.toolkit.fluxcd.io",
                       "applications.argoproj.io")
    for ns in ("flux-system", "argocd"):
        c.kubectl("create", "namespace", ns, check=False)
    c.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                   "items": [KUSTOMIZATION, APPLICATION]}))
    c.kubectl("label", "-n", "media", "deployment/sonarr", *["%s=%s" % kv for kv in FLUX_LABELS.items()])
    c.kubectl("annotate", "-n", "media", "deployment/prowlarr", *["%s=%s" % kv for kv in TRACKING.items()])
    yield c
    c.kubectl("label", "-n", "media", "deployment/sonarr", *["%s-" % k for k in FLUX_LABELS])
    c.kubectl("annotate", "-n", "media", "deployment/prowlarr", *["%s-" % k for k in TRACKING])
    for folder in crds:
        c.kubectl("delete", "-f", folder, "--wait=true")
    c.kubectl("delete", "namespace", "flux-system", "argocd", "--wait=true")


def test_a_live_edit_a_manager_would_put_back_is_refused_then_planned_once_suspended(managed, run_playbook, tmp_path):
    c = managed
    evidence = tmp_path / "evidence"
    before = [c.get_json("deployment", app, "-n", "media") for app in ("prowlarr", "sonarr")]

    offset = audit_size(c)
    run = run_playbook(c, APPLY, inventory="local-three-worker", check=True,
                       extra_vars={"evidence_root": str(evidence)})
    assert run.rc != 0
    said = one_line(run.stdout)
    # every target's manager is named in the one refusal, with the command that suspends it
    argo = ("targets[0] (media/prowlarr): managed: a live edit would not last: Argo CD Application argocd/prowlarr "
            "(annotation argocd.argoproj.io/tracking-id): syncs automatically and puts the edit back within seconds "
            "(selfHeal); make the change in Git, or suspend it and run again: `kubectl -n argocd patch "
            "applications.argoproj.io prowlarr --type=json -p '[{\"op\":\"remove\",\"path\":\"/spec/syncPolicy/automated\"}]'`")
    flux = ("targets[1] (media/sonarr): managed: a live edit would not last: Flux Kustomization flux-system/media "
            "(label kustomize.toolkit.fluxcd.io/name): reconciles and puts the edit back every 10m; make the change "
            "in Git, or suspend it and run again: `kubectl -n flux-system patch kustomizations.kustomize.toolkit.fluxcd.io "
            "media --type=merge -p '{\"spec\":{\"suspend\":true}}'`")
    assert argo in said and flux in said, run.stdout[-3000:]
    assert writes(c, offset) == []

    # the operator runs the commands the message gives, as they stand
    for command in re.findall(r"`(kubectl [^`]+)`", argo + flux):
        subprocess.run(["bash", "-c", command], env=c.env(), check=True, capture_output=True, text=True)
    assert c.get_json("kustomizations.kustomize.toolkit.fluxcd.io", "media", "-n", "flux-system")["spec"]["suspend"] is True
    assert "automated" not in c.get_json("applications.argoproj.io", "prowlarr", "-n", "argocd")["spec"]["syncPolicy"]
    try:
        offset = audit_size(c)
        run = run_playbook(c, APPLY, inventory="local-three-worker", check=True,
                           extra_vars={"evidence_root": str(evidence)})
        assert run.rc == 0, run.stdout[-3000:]
        assert writes(c, offset) == []
        shown = {
            "Deployment/prowlarr": "Argo CD Application argocd/prowlarr (annotation argocd.argoproj.io/tracking-id): "
                                   "syncs by hand; the next sync puts the edit back",
            "Deployment/sonarr": "Flux Kustomization flux-system/media (label kustomize.toolkit.fluxcd.io/name): "
                                 "suspended; its next reconciliation after a resume puts the edit back"}
        plan = json.loads((newest_evidence(evidence, "active_passive") / "plan.json").read_text())
        assert {i["object"]: i.get("manager") for i in plan["items"] if i["object"] in shown} == shown
        report = (newest_evidence(evidence, "active_passive") / "report.md").read_text()
        for obj, text in shown.items():
            # the plan as printed, in the report and at the gate: the manager under its object
            block = "%s (homelab.k8s_ha.workload_fields):\n  managed by %s\n" % (obj, text)
            assert block in report, report
            assert one_line(block) in one_line(run.stdout), run.stdout[-3000:]
    finally:
        c.kubectl("patch", "-n", "flux-system", "kustomizations.kustomize.toolkit.fluxcd.io/media", "--type=merge",
                  "-p", json.dumps({"spec": {"suspend": False}}))
        c.kubectl("apply", "-f", "-", input=json.dumps(APPLICATION))
    assert [c.get_json("deployment", app, "-n", "media")["spec"] for app in ("prowlarr", "sonarr")] == [
        d["spec"] for d in before]
