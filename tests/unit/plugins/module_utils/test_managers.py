"""managers: who manages an object the collection edits live, and whether it puts the edit back."""

import pytest

from ansible_collections.homelab.k8s_ha.plugins.module_utils.managers import (
    decide,
    manager_text,
    owners,
    policies,
    refusal,
    suspension,
    verdict,
)
from ansible_collections.homelab.k8s_ha.plugins.module_utils.plan import (
    plan_differences,
    plan_items,
    plan_report,
)


def obj(labels=None, annotations=None, namespace="apps"):
    return {"metadata": {"name": "web", "namespace": namespace, "labels": labels or {},
                         "annotations": annotations or {}}}


def app(automated=None, annotations=None):
    spec = {"syncPolicy": {"automated": automated}} if automated is not None else {"syncPolicy": {}}
    return {"kind": "Application", "metadata": {"name": "web", "namespace": "argocd",
                                                "annotations": annotations or {}}, "spec": spec}


TRACKED = obj(annotations={"argocd.argoproj.io/tracking-id": "web:apps/Deployment:apps/web"})


def one(o, owner, held=()):
    (ref,) = owners(o)
    return verdict(ref, owner, o, held)


def test_no_marker_no_manager():
    assert owners(obj()) == []
    assert manager_text([]) is None and refusal([]) is None


def test_argocd_tracking_id_names_the_application_in_argocds_namespace():
    (ref,) = owners(TRACKED)
    assert (ref["manager"], ref["kind"], ref["namespace"], ref["name"]) == ("Argo CD", "Application", "argocd", "web")
    assert ref["api_version"] == "argoproj.io/v1alpha1" and not ref["candidate"]


def test_argocd_tracking_id_of_an_application_in_another_namespace():
    # argo-cd AppInstanceName: <namespace>_<name> outside the control plane's namespace
    o = obj(annotations={"argocd.argoproj.io/tracking-id": "team-a_web:apps/Deployment:apps/web"})
    (ref,) = owners(o, argocd_namespace="gitops")
    assert (ref["namespace"], ref["name"]) == ("team-a", "web")
    (ref,) = owners(TRACKED, argocd_namespace="gitops")
    assert ref["namespace"] == "gitops"


@pytest.mark.parametrize("automated, reverts, when", [
    ({"selfHeal": True}, True, "within seconds (selfHeal)"),
    ({}, True, "at its next automated sync"),
    ({"enabled": False, "selfHeal": True}, False, None),  # SyncPolicy.IsAutomatedSyncEnabled
    (None, False, None),
])
def test_argocd_reverts_while_automated_sync_is_on(automated, reverts, when):
    v = one(TRACKED, app(automated))
    assert v["reverts"] is reverts
    if when:
        assert v["text"] == ("Argo CD Application argocd/web (annotation argocd.argoproj.io/tracking-id): "
                             "syncs automatically and puts the edit back " + when)
    else:
        assert v["text"].endswith("syncs by hand; the next sync puts the edit back")


def test_argocd_skip_reconcile_does_not_revert():
    v = one(TRACKED, app({"selfHeal": True}, {"argocd.argoproj.io/skip-reconcile": "true"}))
    assert v["reverts"] is False and "argocd.argoproj.io/skip-reconcile" in v["text"]


def test_a_tracking_id_whose_application_is_not_found_counts_as_reverting():
    v = one(TRACKED, None)
    assert v["reverts"] is True and "not found where this run looked" in v["text"]


def test_the_instance_label_names_an_application_only_when_one_exists():
    o = obj(labels={"app.kubernetes.io/instance": "web"})
    assert one(o, None) is None  # a Helm chart's label, no Application of that name
    assert one(o, app({"selfHeal": True}))["reverts"] is True


def test_the_window_hold_of_runbook_002_lets_the_edit_through():
    held = [app({"selfHeal": True})]  # the Application itself, as app_gates_info returns it
    v = one(TRACKED, app({"selfHeal": True}), held)
    assert v["reverts"] is False and "held by this run" in v["text"]
    other = [{"kind": "Application", "namespace": "argocd", "name": "other"}]
    assert one(TRACKED, app({"selfHeal": True}), other)["reverts"] is True


FLUX = obj(labels={"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"})


def kustomization(suspend=None):
    spec = {"interval": "10m", "path": "./apps", "prune": True}
    if suspend is not None:
        spec["suspend"] = suspend
    return {"kind": "Kustomization", "metadata": {"name": "apps", "namespace": "flux-system"}, "spec": spec}


def test_flux_kustomization_reverts_every_interval_unless_suspended():
    v = one(FLUX, kustomization())
    assert v["reverts"] is True
    assert v["text"] == ("Flux Kustomization flux-system/apps (label kustomize.toolkit.fluxcd.io/name): "
                         "reconciles and puts the edit back every 10m")
    assert one(FLUX, kustomization(False))["reverts"] is True
    v = one(FLUX, kustomization(True))
    assert v["reverts"] is False and "suspended" in v["text"]
    assert one(FLUX, None)["reverts"] is True


def test_flux_reconcile_disabled_on_the_object():
    o = obj(labels=FLUX["metadata"]["labels"], annotations={"kustomize.toolkit.fluxcd.io/reconcile": "disabled"})
    assert one(o, kustomization())["reverts"] is False


def test_flux_helmrelease_reverts_unless_suspended():
    o = obj(labels={"helm.toolkit.fluxcd.io/name": "web", "helm.toolkit.fluxcd.io/namespace": "apps"},
            annotations={"meta.helm.sh/release-name": "web", "meta.helm.sh/release-namespace": "apps"})
    refs = owners(o)
    assert [r["kind"] for r in refs] == ["HelmRelease", "release"]
    release = {"kind": "HelmRelease", "spec": {"interval": "5m"}}
    assert "at its next upgrade" in verdict(refs[0], release, o)["text"]
    drift = {"kind": "HelmRelease", "spec": {"interval": "5m", "driftDetection": {"mode": "enabled"}}}
    assert verdict(refs[0], drift, o)["text"].endswith("every 5m")
    assert verdict(refs[0], {"spec": {"suspend": True}}, o)["reverts"] is False
    assert verdict(refs[1], None, o)["reverts"] is False  # plain Helm: nothing runs it by itself


def test_k3s_addon_reverts_at_every_server_start():
    o = obj(annotations={"objectset.rio.cattle.io/owner-gvk": "k3s.cattle.io/v1, Kind=Addon",
                         "objectset.rio.cattle.io/owner-name": "coredns",
                         "objectset.rio.cattle.io/owner-namespace": "kube-system"}, namespace="kube-system")
    v = one(o, {"kind": "Addon"})
    assert v["reverts"] is True and "every server start" in v["text"]
    assert refusal([v]) == (
        "managed: a live edit would not last: k3s Addon kube-system/coredns (annotation "
        "objectset.rio.cattle.io/owner-gvk): k3s re-writes and re-applies the manifest at every server start; "
        "change it through k3s: start the servers with --disable=coredns and deploy your own manifest, then run again")
    # another objectset owner (a Service's svclb DaemonSet) is not an Addon
    other = obj(annotations={"objectset.rio.cattle.io/owner-gvk": "/v1, Kind=Service",
                             "objectset.rio.cattle.io/owner-name": "traefik"})
    assert owners(other) == []


def test_refusal_names_the_manager_and_the_command_that_suspends_it():
    v = one(FLUX, kustomization())
    assert refusal([v]) == (
        "managed: a live edit would not last: Flux Kustomization flux-system/apps (label "
        "kustomize.toolkit.fluxcd.io/name): reconciles and puts the edit back every 10m; make the change in Git, "
        "or suspend it and run again: `kubectl -n flux-system patch kustomizations.kustomize.toolkit.fluxcd.io apps "
        "--type=merge -p '{\"spec\":{\"suspend\":true}}'`")
    assert refusal([one(TRACKED, app({}))]).endswith(
        "`kubectl -n argocd patch applications.argoproj.io web --type=json "
        "-p '[{\"op\":\"remove\",\"path\":\"/spec/syncPolicy/automated\"}]'`")
    assert refusal([one(FLUX, kustomization(True))]) is None


def test_the_manager_is_an_item_of_the_plan_and_its_report():
    result = {"changed": True, "manager": "Flux Kustomization flux-system/apps (label x): suspended",
              "item": {"name": "web", "namespace": "apps", "fields": {"spec.replicas": 2}},
              "diff": {"before": {"spec.replicas": 1}, "after": {"spec.replicas": 2}}}
    (item,) = plan_items([result], "Deployment", "homelab.k8s_ha.workload_fields")
    assert item["manager"] == result["manager"]
    assert plan_report([item]) == ["Deployment/web (homelab.k8s_ha.workload_fields):",
                                   "  managed by Flux Kustomization flux-system/apps (label x): suspended",
                                   "  spec.replicas: 1 -> 2"]
    resumed = dict(item, manager="Flux Kustomization flux-system/apps (label x): reconciles")
    assert plan_differences([item], [resumed]) == [
        'Deployment/web: manager: approved "Flux Kustomization flux-system/apps (label x): suspended", '
        'now "Flux Kustomization flux-system/apps (label x): reconciles"']


def test_policies_one_for_all_or_by_manager():
    assert policies("refuse") == {"argocd": "refuse", "flux": "refuse", "k3s": "refuse", "helm": "refuse"}
    # suspend where the manager has an object that suspends it; k3s and Helm stay refused
    assert policies("suspend") == {"argocd": "suspend", "flux": "suspend", "k3s": "refuse", "helm": "refuse"}
    assert policies({"flux": "suspend"}) == {"argocd": "refuse", "flux": "suspend", "k3s": "refuse", "helm": "refuse"}


@pytest.mark.parametrize("value, message", [
    ("ignore", "managed: 'ignore' is not a policy; allowed: refuse, suspend, report, or a dict by manager "
               "(argocd, flux, helm, k3s)"),
    ({"fluxcd": "suspend"}, "managed.fluxcd: not a manager; allowed: argocd, flux, helm, k3s"),
    ({"k3s": "suspend"}, "managed.k3s: 'suspend' is not a policy for it; allowed: refuse, report"),
    (["refuse"], "managed: give a policy (refuse, suspend, report) or a dict by manager (argocd, flux, helm, k3s), "
                 "not ['refuse']"),
])
def test_a_bad_policy_names_the_field_and_the_allowed_values(value, message):
    with pytest.raises(ValueError) as e:
        policies(value)
    assert str(e.value) == message


def test_decide_refuses_or_suspends_by_manager():
    flux = one(FLUX, kustomization())
    argo = one(TRACKED, app({"selfHeal": True}))
    suspended = one(FLUX, kustomization(True))
    assert decide([flux, argo, suspended], policies({"flux": "suspend"})) == ([argo], [flux])
    assert decide([flux, argo], policies("report")) == ([], [])
    k3s_obj = obj(annotations={"objectset.rio.cattle.io/owner-gvk": "k3s.cattle.io/v1, Kind=Addon",
                               "objectset.rio.cattle.io/owner-name": "coredns"})
    k3s = one(k3s_obj, None)
    assert decide([k3s], policies("suspend")) == ([k3s], [])


def test_a_suspension_is_a_target_of_its_own_and_the_managed_object_shows_it_held():
    target, hold = suspension(one(FLUX, kustomization()), "this run's rollback")
    assert target == {"kind": "Kustomization", "api_version": "kustomize.toolkit.fluxcd.io/v1",
                      "namespace": "flux-system", "name": "apps", "fields": {"spec.suspend": True},
                      "compare": "exact", "wait": False}
    v = one(FLUX, kustomization(), [hold])
    assert v["reverts"] is False
    assert v["text"] == ("Flux Kustomization flux-system/apps (label kustomize.toolkit.fluxcd.io/name): held by this "
                         "run (suspended until this run's rollback)")
    target, hold = suspension(one(TRACKED, app({"selfHeal": True})), "this run's rollback")
    assert target["fields"] == {"spec.syncPolicy.automated": None}
    assert one(TRACKED, app({"selfHeal": True}), [hold])["text"].endswith(
        "held by this run (its automated sync off until this run's rollback)")


def test_a_suspended_manager_resumes_after_the_components_it_manages():
    from ansible_collections.homelab.k8s_ha.plugins.module_utils.spread import rollback_steps
    records = [{"kind": "HelmRelease", "name": "haproxy", "fields": {"spec.suspend": None}},
               {"kind": "Deployment", "name": "haproxy", "fields": {"spec.replicas": 1}},
               {"kind": "Deployment", "name": "coredns", "fields": {"spec.replicas": 1}}]
    assert [(r["kind"], r["name"], step) for r, step in rollback_steps(records)] == [
        ("Deployment", "haproxy", {"spec.replicas": 1}), ("Deployment", "coredns", {"spec.replicas": 1}),
        ("HelmRelease", "haproxy", {"spec.suspend": None})]
