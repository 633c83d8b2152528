# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who manages an object the collection edits live, and whether that manager puts the edit back.

Pure: an object's metadata names its candidate managers (``owners``); the manager's own
object, read by the caller, says whether it reconciles the live edit away (``verdict``);
``refusal`` turns the verdicts into the message a refused target gets. The markers:

- Argo CD: the ``argocd.argoproj.io/tracking-id`` annotation,
  ``<app>:<group>/<kind>:<namespace>/<name>`` where ``<app>`` is ``<namespace>_<name>`` for an
  Application outside Argo CD's own namespace (argo-cd v3.1 ``ParseAppInstanceValue``,
  ``ParseInstanceName``); with label tracking the ``app.kubernetes.io/instance`` label, which
  Helm charts set too, so it names an Application only when one of that name exists. The
  Application syncs live edits back while ``spec.syncPolicy.automated`` is set and not
  ``enabled: false`` (``SyncPolicy.IsAutomatedSyncEnabled``), unless it carries
  ``argocd.argoproj.io/skip-reconcile: "true"``.
- Flux: the ``kustomize.toolkit.fluxcd.io/name``/``namespace`` labels (the Kustomization's
  owner labels) and ``helm.toolkit.fluxcd.io/name``/``namespace`` (the HelmRelease's). A
  Kustomization re-applies its objects every ``spec.interval`` unless ``spec.suspend`` is
  true or the object is annotated ``kustomize.toolkit.fluxcd.io/reconcile: disabled``; a
  HelmRelease corrects drift every interval with ``spec.driftDetection.mode: enabled`` and
  puts the chart's values back at its next upgrade otherwise, unless ``spec.suspend``.
- k3s: the ``objectset.rio.cattle.io/owner-*`` annotations of an ``Addon``, a manifest of the
  server's manifests folder, which k3s re-writes and re-applies at every server start.
- Helm: the ``meta.helm.sh/release-name``/``release-namespace`` annotations; the next
  ``helm upgrade`` of the release puts the chart's values back. Nothing runs it by itself.

Where unsure, the verdict is the stricter one: a tracking annotation whose Application is
not found, or a Flux label whose Kustomization is not found, counts as a manager that
reverts (it may live where this run did not look).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

ARGOCD = "argoproj.io"
ARGOCD_API = ARGOCD + "/v1alpha1"
TRACKING_ID = "argocd.argoproj.io/tracking-id"
INSTANCE_LABEL = "app.kubernetes.io/instance"
SKIP_RECONCILE = "argocd.argoproj.io/skip-reconcile"
KUSTOMIZE = "kustomize.toolkit.fluxcd.io"
KUSTOMIZE_API = KUSTOMIZE + "/v1"
HELM_TOOLKIT = "helm.toolkit.fluxcd.io"
HELM_TOOLKIT_API = HELM_TOOLKIT + "/v2"
HELM_RELEASE_NAME = "meta.helm.sh/release-name"
HELM_RELEASE_NAMESPACE = "meta.helm.sh/release-namespace"
K3S_OWNER = "objectset.rio.cattle.io/owner-"
K3S_ADDON_GVK = "k3s.cattle.io/v1, Kind=Addon"
K3S = "k3s.cattle.io"
K3S_ADDON_API = K3S + "/v1"

# what a person does about a manager that would put the edit back: the kubectl command that
# suspends it (what `flux suspend` and `argocd app set --sync-policy none` send), run as it stands
SUSPEND = {
    "Application": ("kubectl -n {namespace} patch applications.argoproj.io {name} --type=json "
                    "-p '[{{\"op\":\"remove\",\"path\":\"/spec/syncPolicy/automated\"}}]'"),
    "Kustomization": ("kubectl -n {namespace} patch kustomizations.kustomize.toolkit.fluxcd.io {name} "
                      "--type=merge -p '{{\"spec\":{{\"suspend\":true}}}}'"),
    "HelmRelease": ("kubectl -n {namespace} patch helmreleases.helm.toolkit.fluxcd.io {name} "
                    "--type=merge -p '{{\"spec\":{{\"suspend\":true}}}}'"),
}
K3S_WHAT_TO_DO = ("change it through k3s: start the servers with --disable={name} and deploy your own "
                  "manifest, then run again")


def _ref(manager, kind, api_version, namespace, name, by, candidate=False):
    return {"manager": manager, "kind": kind, "api_version": api_version, "namespace": namespace,
            "name": name, "by": by, "candidate": candidate}


def owners(obj, argocd_namespace="argocd"):
    """The managers ``obj``'s metadata names, most specific first: a list of
    ``{manager, kind, api_version, namespace, name, by, candidate}``, the manager's own
    object (``api_version`` None for a Helm release, which has none to read). ``candidate``
    marks the Argo CD label, which names an Application only if that Application exists."""
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    out = []
    tracking = annotations.get(TRACKING_ID)
    if tracking:
        app = tracking.split(":", 1)[0]
        namespace, name = app.split("_", 1) if "_" in app else (argocd_namespace, app)
        out.append(_ref("Argo CD", "Application", ARGOCD_API, namespace, name,
                        "annotation %s" % TRACKING_ID))
    for group, kind, api in ((KUSTOMIZE, "Kustomization", KUSTOMIZE_API),
                             (HELM_TOOLKIT, "HelmRelease", HELM_TOOLKIT_API)):
        name = labels.get(group + "/name")
        if name:
            out.append(_ref("Flux", kind, api, labels.get(group + "/namespace") or meta.get("namespace"),
                            name, "label %s/name" % group))
    if annotations.get(K3S_OWNER + "gvk") == K3S_ADDON_GVK and annotations.get(K3S_OWNER + "name"):
        out.append(_ref("k3s", "Addon", K3S_ADDON_API,
                        annotations.get(K3S_OWNER + "namespace") or "kube-system",
                        annotations[K3S_OWNER + "name"], "annotation %sgvk" % K3S_OWNER))
    instance = labels.get(INSTANCE_LABEL)
    if instance and not tracking:
        namespace, name = instance.split("_", 1) if "_" in instance else (argocd_namespace, instance)
        out.append(_ref("Argo CD", "Application", ARGOCD_API, namespace, name,
                        "label %s" % INSTANCE_LABEL, candidate=True))
    if annotations.get(HELM_RELEASE_NAME):
        out.append(_ref("Helm", "release", None, annotations.get(HELM_RELEASE_NAMESPACE) or meta.get("namespace"),
                        annotations[HELM_RELEASE_NAME], "annotation %s" % HELM_RELEASE_NAME))
    return out


def _same(held, ref):
    """Whether ``held`` ({kind, namespace, name}, or the manager's whole object) is ``ref``'s object."""
    meta = held.get("metadata") or {}
    return (held.get("kind") == ref["kind"] and ref["namespace"] == held.get("namespace", meta.get("namespace"))
            and ref["name"] == held.get("name", meta.get("name")))


def _name(ref):
    return "%s %s %s/%s" % (ref["manager"], ref["kind"], ref["namespace"], ref["name"])


def verdict(ref, owner, obj, held=()):
    """What ``ref``'s manager does to a live edit of ``obj``: ``None`` when ``ref`` names no
    manager after all (an ``app.kubernetes.io/instance`` label with no such Application), else
    ``{manager, object, kind, namespace, name, api_version, by, reverts, text}``. ``owner`` is the manager's object as read (None: not
    found or its kind not served); ``held`` lists ``{kind, namespace, name}`` this run holds
    still before its first write (runbook 002's window; or the suspensions of
    ``managed: suspend``, whose ``until`` says until when)."""
    if ref["candidate"] and owner is None:
        return None
    out = _verdict(ref, owner, obj)
    holds = [h for h in held or () if _same(h, ref)]
    if out["reverts"] and holds:
        what = "its automated sync off" if ref["kind"] == "Application" else "suspended"
        return dict(out, reverts=False, held=True, text="%s (%s): held by this run (%s until %s)" % (
            _name(ref), ref["by"], what, holds[0].get("until") or "the window's release"))
    return out


def _verdict(ref, owner, obj):
    """verdict, without the run's holds."""
    kind = ref["kind"]
    out = {"manager": ref["manager"], "object": "%s/%s/%s" % (kind, ref["namespace"], ref["name"]),
           "kind": kind, "namespace": ref["namespace"], "name": ref["name"],
           "api_version": ref["api_version"], "by": ref["by"]}
    if kind == "release":
        return dict(out, reverts=False, text="Helm release %s/%s (%s): the next helm upgrade of the "
                                             "release puts the chart's values back"
                                             % (ref["namespace"], ref["name"], ref["by"]))
    if kind == "Addon":
        return dict(out, reverts=True, text="k3s Addon %s/%s (%s): k3s re-writes and re-applies the "
                                            "manifest at every server start" % (ref["namespace"], ref["name"], ref["by"]))
    if owner is None:
        return dict(out, reverts=True, text="%s (%s): not found where this run looked, so nothing tells "
                                            "that it does not put the edit back" % (_name(ref), ref["by"]))
    spec = owner.get("spec") or {}
    annotations = (owner.get("metadata") or {}).get("annotations") or {}
    if kind == "Application":
        automated = (spec.get("syncPolicy") or {}).get("automated")
        if str(annotations.get(SKIP_RECONCILE, "")).lower() == "true":
            return dict(out, reverts=False, text="%s (%s): not reconciled (%s)" % (_name(ref), ref["by"], SKIP_RECONCILE))
        if automated is not None and automated.get("enabled") is not False:
            when = "within seconds (selfHeal)" if automated.get("selfHeal") else "at its next automated sync"
            return dict(out, reverts=True, text="%s (%s): syncs automatically and puts the edit back %s"
                                                % (_name(ref), ref["by"], when))
        return dict(out, reverts=False, text="%s (%s): syncs by hand; the next sync puts the edit back"
                                             % (_name(ref), ref["by"]))
    obj_annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if kind == "Kustomization" and obj_annotations.get(KUSTOMIZE + "/reconcile") == "disabled":
        return dict(out, reverts=False, text="%s (%s): the object is annotated %s/reconcile: disabled"
                                             % (_name(ref), ref["by"], KUSTOMIZE))
    if spec.get("suspend") is True:
        return dict(out, reverts=False, text="%s (%s): suspended; its next reconciliation after a resume "
                                             "puts the edit back" % (_name(ref), ref["by"]))
    interval = spec.get("interval") or "its interval"
    if kind == "HelmRelease" and (spec.get("driftDetection") or {}).get("mode") != "enabled":
        when = "at its next upgrade"
    else:
        when = "every %s" % interval
    return dict(out, reverts=True, text="%s (%s): reconciles and puts the edit back %s" % (_name(ref), ref["by"], when))


# the managed option: a manager's key and the policies it takes (suspend: through its own
# object; k3s's packaged manifests and Helm releases have no object that suspends them)
POLICIES = {"Argo CD": ("argocd", ("refuse", "suspend", "report")),
            "Flux": ("flux", ("refuse", "suspend", "report")),
            "k3s": ("k3s", ("refuse", "report")),
            "Helm": ("helm", ("refuse", "report"))}
# what suspends a manager's object, as workload_fields fields (prior values come back in its rollback)
SUSPENDS = {"Application": {"spec.syncPolicy.automated": None},
            "Kustomization": {"spec.suspend": True},
            "HelmRelease": {"spec.suspend": True}}


def policies(value):
    """``{manager key: policy}`` from workload_fields' ``managed``: one policy for every manager
    (a string), or a dict by manager key (the others ``refuse``). Raises ValueError naming the
    field and the allowed values."""
    keys = dict((key, allowed) for key, allowed in POLICIES.values())
    if isinstance(value, str):
        if value == "suspend":
            return dict((k, "suspend" if "suspend" in allowed else "refuse") for k, allowed in keys.items())
        if value not in ("refuse", "report"):
            raise ValueError("managed: %r is not a policy; allowed: refuse, suspend, report, or a dict by manager (%s)"
                             % (value, ", ".join(sorted(keys))))
        return dict((k, value) for k in keys)
    if not isinstance(value, dict):
        raise ValueError("managed: give a policy (refuse, suspend, report) or a dict by manager (%s), not %r"
                         % (", ".join(sorted(keys)), value))
    out = dict((k, "refuse") for k in keys)
    for key, policy in value.items():
        if key not in keys:
            raise ValueError("managed.%s: not a manager; allowed: %s" % (key, ", ".join(sorted(keys))))
        if policy not in keys[key]:
            raise ValueError("managed.%s: %r is not a policy for it; allowed: %s" % (key, policy, ", ".join(keys[key])))
        out[key] = policy
    return out


def suspension(v, until):
    """The workload_fields target that suspends ``v``'s manager (its own object, compared
    exactly, no wait), held ``until``; None when nothing suspends it through the API."""
    kind, namespace, name = v["kind"], v["namespace"], v["name"]
    if kind not in SUSPENDS:
        return None
    return {"kind": kind, "api_version": v["api_version"], "namespace": namespace, "name": name,
            "fields": dict(SUSPENDS[kind]), "compare": "exact", "wait": False}, dict(
                kind=kind, namespace=namespace, name=name, until=until)


def decide(verdicts, chosen):
    """What the policies ``chosen`` (policies()) make of one target's verdicts: ``(refuse,
    suspend)``, the verdicts to refuse and those whose manager this run suspends first."""
    refuse, suspend = [], []
    for v in verdicts:
        if not v or not v["reverts"]:
            continue
        policy = chosen[POLICIES[v["manager"]][0]]
        if policy == "suspend" and v["kind"] in SUSPENDS:
            suspend.append(v)
        elif policy != "report":
            refuse.append(v)
    return refuse, suspend


def refusal(verdicts):
    """The message for a target whose managers include one that would put a live edit back,
    naming each such manager and what to do (the command that suspends it, in backquotes);
    None when none would."""
    reverting = [v for v in verdicts if v and v["reverts"]]
    if not reverting:
        return None
    parts = []
    for v in reverting:
        kind, namespace, name = v["kind"], v["namespace"], v["name"]
        if kind in SUSPEND:
            todo = "make the change in Git, or suspend it and run again: `%s`" % SUSPEND[kind].format(
                namespace=namespace, name=name)
        else:
            todo = K3S_WHAT_TO_DO.format(name=name)
        parts.append("%s; %s" % (v["text"], todo))
    return "managed: a live edit would not last: " + "; ".join(parts)


def manager_text(verdicts):
    """One line for the plan and the report: every manager of the object, or None."""
    texts = [v["text"] for v in verdicts if v]
    return "; ".join(texts) or None


# the reads of the managers' own objects (RBAC rules every family that edits live holds)
MANAGER_READS = [
    {"apiGroups": [ARGOCD], "resources": ["applications"], "verbs": ["get"]},
    {"apiGroups": [KUSTOMIZE], "resources": ["kustomizations"], "verbs": ["get"]},
    {"apiGroups": [HELM_TOOLKIT], "resources": ["helmreleases"], "verbs": ["get"]},
    {"apiGroups": [K3S], "resources": ["addons"], "verbs": ["get"]},
]
