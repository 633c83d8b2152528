"""Who manages the objects a playbook edits live (plugins/module_utils/managers.py), on runbook
003's cluster, which Flux manages: a live edit of a Deployment that a Flux Kustomization or an
Argo CD Application with automated sync puts back is refused before any write, naming the
manager and what to do; once the manager is suspended (Flux) or syncs by hand (Argo CD), the
plan goes ahead and shows the manager of each object in the plan and in report.md. With
``active_passive_managed: suspend`` the run suspends both managers first, as changes of its
own, and the rollback resumes them; a drift reverter playing both controllers' part
(tests/simulators/gitops_simulator.py) shows a plain live edit put back, and the run's edits
holding through the verification. The managers' objects are the upstream CRDs'
(tests/cluster/upstream_crds.py), validated by the API server, and the playbooks run as the
active-passive family's ServiceAccount."""

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from gitops_simulator import GitOpsSimulator
from observe import audit_entries, audit_size, evidence_runner, newest_evidence, writes
from proof import proof
from upstream_crds import fetch

APPLY = "playbooks/active_passive.yml"
ROLLBACK = "playbooks/active_passive_rollback.yml"
SA = "system:serviceaccount:homelab-operators:homelab-active-passive"
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "three-worker" / "10-apps.yaml"
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
        # both managers as the fixture made them: the Kustomization without spec.suspend, the
        # Application syncing automatically
        c.kubectl("patch", "-n", "flux-system", "kustomizations.kustomize.toolkit.fluxcd.io/media", "--type=json",
                  "-p", json.dumps([{"op": "remove", "path": "/spec/suspend"}]))
        c.kubectl("apply", "-f", "-", input=json.dumps(APPLICATION))
    assert [c.get_json("deployment", app, "-n", "media")["spec"] for app in ("prowlarr", "sonarr")] == [
        d["spec"] for d in before]


def git(name):
    """The Deployment as "Git" has it: the fixture's manifest."""
    items = yaml.safe_load(FIXTURE.read_text())["items"]
    return [i for i in items if i["kind"] == "Deployment" and i["metadata"]["name"] == name][0]


def test_suspended_managers_hold_the_run_and_the_rollback_resumes_them(managed, run_playbook, tmp_path):
    c = managed
    reverter = GitOpsSimulator(c, tick=1.0)
    reverter.source("Kustomization", "flux-system", "media", [git("sonarr")])
    reverter.source("Application", "argocd", "prowlarr", [git("prowlarr")])
    reverter.start()
    try:
        # what the runbook's kubectl one-liner does on this cluster: Flux puts it back
        c.kubectl("patch", "deployment", "sonarr", "-n", "media", "--type=json",
                  "-p", json.dumps([{"op": "remove", "path": "/spec/template/spec/nodeSelector"}]))
        reverter.wait_passes(2)
        assert c.get_json("deployment", "sonarr", "-n", "media")["spec"]["template"]["spec"]["nodeSelector"] == {
            "role": "primary"}
        assert [what for _t, what in reverter.reverts] == ["Deployment media/sonarr"]

        run = evidence_runner(run_playbook, c, tmp_path / "evidence", APPLY, inventory="local-three-worker",
                              active_passive_managed="suspend")

        marks = {}

        def planned(p):
            # each manager suspended as a change of its own, shown in the plan
            items = dict((i["object"], i) for i in p.plan["items"])
            assert (items["Kustomization/media"]["before"], items["Kustomization/media"]["after"]) == (
                {"spec.suspend": None}, {"spec.suspend": True})
            assert items["Application/prowlarr"]["after"] == {"spec.syncPolicy.automated": None}
            assert items["Deployment/sonarr"]["manager"] == (
                "Flux Kustomization flux-system/media (label kustomize.toolkit.fluxcd.io/name): held by this run "
                "(suspended until this run's rollback)")
            assert items["Deployment/prowlarr"]["manager"] == (
                "Argo CD Application argocd/prowlarr (annotation argocd.argoproj.io/tracking-id): held by this run "
                "(its automated sync off until this run's rollback)")
            marks["apply"] = audit_size(c)

        with proof(run, c, "active_passive, Flux and Argo CD suspended", APPLY, "active_passive", ROLLBACK,
                   "active_passive_rollback", before_apply=planned):
            # the apply suspended each manager before it wrote the first workload that manager manages
            sent = [(e["objectRef"]["resource"], e["objectRef"]["name"]) for e in audit_entries(c, marks["apply"])
                    if e["user"]["username"] == SA and e["verb"] == "patch" and "dryRun" not in e["requestURI"]
                    and e["objectRef"]["resource"] in ("applications", "kustomizations", "deployments")]
            assert sent == [("applications", "prowlarr"), ("deployments", "prowlarr"),
                            ("kustomizations", "media"), ("deployments", "sonarr")], sent
            verify = json.loads((newest_evidence(run.evidence, "active_passive") / "verify.json").read_text())
            assert verify["checks"] and all(chk["passed"] for chk in verify["checks"]), verify
            # the edits hold while the managers are suspended: the reverter runs and puts nothing back
            since = len(reverter.reverts)
            reverter.wait_passes(3)
            assert reverter.reverts[since:] == []
            for app in ("sonarr", "prowlarr"):
                spec = c.get_json("deployment", app, "-n", "media")["spec"]["template"]["spec"]
                assert "nodeSelector" not in spec and spec["affinity"]["nodeAffinity"], (app, spec)
        # the rollback resumed both managers (proof compared every written object with its
        # before-snapshot); with the workloads as Git has them, the reverter finds nothing to put back
        assert c.get_json("kustomizations.kustomize.toolkit.fluxcd.io", "media", "-n", "flux-system")["spec"].get(
            "suspend") is None
        assert c.get_json("applications.argoproj.io", "prowlarr", "-n", "argocd")["spec"]["syncPolicy"]["automated"] == {
            "selfHeal": True, "prune": True}
        since = len(reverter.reverts)
        reverter.wait_passes(2)
        assert reverter.reverts[since:] == []
    finally:
        reverter.stop()
