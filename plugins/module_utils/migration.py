# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runbook 002, per-app migration: the data-model classification, which strategies fit
which class, and the pre-migration safety gates of section 3.1. Pure functions over
the objects as the API returns them."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import datetime

from ansible_collections.homelab.k8s_ha.plugins.module_utils.placement import node_summary, pod_owner
from ansible_collections.homelab.k8s_ha.plugins.module_utils.scheduling import (
    requirement_matches,
    toleration_tolerates,
)

STRATEGIES = ("active_active", "controlled_failover", "hybrid")
CLASSES = ("stateless", "rwx_shareable", "rwo_single_writer", "fragile_db")
# Strategy A runs two writers at once; it fits only data that tolerates that.
FITS = {
    "stateless": STRATEGIES,
    "rwx_shareable": STRATEGIES,
    "rwo_single_writer": ("controlled_failover", "hybrid"),
    "fragile_db": ("controlled_failover", "hybrid"),
}
# Image names (the last path part, without tag) of databases that are fragile under
# restarts and clock skew. Overridable by the caller.
KNOWN_DATABASES = ("postgres", "postgresql", "mysql", "mariadb", "mongo", "mongodb", "redis",
                   "valkey", "elasticsearch", "opensearch", "qdrant", "etcd", "influxdb",
                   "clickhouse", "cassandra", "cockroach", "timescaledb")


def _pod_spec(workload):
    return workload.get("spec", {}).get("template", {}).get("spec", {})


def image_name(image):
    """``registry:5000/library/postgres:16@sha256:..`` -> ``postgres``."""
    name = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return name.split(":", 1)[0]


def claims_of(workload):
    """Claim names the workload's pods mount; a StatefulSet's templates as ``<tpl>-*``."""
    names = [v["persistentVolumeClaim"]["claimName"] for v in _pod_spec(workload).get("volumes") or []
             if v.get("persistentVolumeClaim", {}).get("claimName")]
    names += ["%s-*" % t["metadata"]["name"]
              for t in workload.get("spec", {}).get("volumeClaimTemplates") or []]
    return names


def classify(workload, pvcs, databases=KNOWN_DATABASES):
    """{"class", "reason"} for a workload, from its claims' access modes and its images.

    ``pvcs``: the PersistentVolumeClaims of its namespace (a StatefulSet's templates
    are judged by their own access modes)."""
    by_name = dict((p["metadata"]["name"], p) for p in pvcs)
    modes = {}
    for claim in claims_of(workload):
        if claim.endswith("-*"):
            tpl = [t for t in workload["spec"]["volumeClaimTemplates"]
                   if t["metadata"]["name"] == claim[:-2]][0]
            modes[claim] = tpl.get("spec", {}).get("accessModes") or []
        else:
            pvc = by_name.get(claim)
            modes[claim] = (pvc or {}).get("spec", {}).get("accessModes") or ["unknown (claim not found)"]
    if not modes:
        return {"class": "stateless", "reason": "mounts no PersistentVolumeClaim"}
    dbs = sorted(set(image_name(c.get("image", "")) for c in _pod_spec(workload).get("containers") or [])
                 & set(databases))
    described = ", ".join("%s (%s)" % (k, "/".join(v)) for k, v in sorted(modes.items()))
    if dbs:
        return {"class": "fragile_db",
                "reason": "runs %s, a database sensitive to restarts and clock skew, on %s" % (", ".join(dbs), described)}
    if all(m == ["ReadWriteMany"] or set(m) == {"ReadWriteMany"} for m in modes.values()):
        return {"class": "rwx_shareable", "reason": "every claim is ReadWriteMany: %s" % described}
    return {"class": "rwo_single_writer", "reason": "single-writer storage: %s" % described}


def strategy_refusal(strategy, classification, app):
    """None when ``strategy`` fits the class, else the explanation."""
    if strategy not in STRATEGIES:
        return "strategy: %r; allowed: %s" % (strategy, ", ".join(STRATEGIES))
    fits = FITS[classification["class"]]
    if strategy in fits:
        return None
    return ("strategy %s runs two replicas writing at once; %s is %s (%s). Allowed for it: %s"
            % (strategy, app, classification["class"], classification["reason"], ", ".join(fits)))


def _selects(selector, labels):
    if not selector:
        return False
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    # label-selector expressions share In / NotIn / Exists / DoesNotExist with node selectors
    return all(requirement_matches(e, labels) for e in selector.get("matchExpressions") or [])


def _parse_time(value):
    if not value:
        return None
    return datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)


def pdb_verdict(pdbs, labels, replicas, stateful):
    """(passed, evidence) for the PodDisruptionBudget gate.

    Single replica and stateful: the budget must allow no voluntary disruption
    (maxUnavailable 0 or minAvailable 1). More replicas: at least one disruption allowed
    and never all of them."""
    matching = [p for p in pdbs if _selects(p.get("spec", {}).get("selector"), labels)]
    if not matching:
        return False, "no PodDisruptionBudget selects the app's pods"
    spec = matching[0]["spec"]
    name = matching[0]["metadata"]["name"]
    max_unavailable, min_available = spec.get("maxUnavailable"), spec.get("minAvailable")
    if isinstance(max_unavailable, int):
        allowed = max_unavailable
    elif isinstance(min_available, int):
        allowed = replicas - min_available
    else:  # percentages: judged on the current replica count
        pct = int(str(max_unavailable if max_unavailable is not None else min_available).rstrip("%") or 0)
        allowed = (replicas * pct + 99) // 100 if max_unavailable is not None else replicas - (replicas * pct + 99) // 100
    text = "%s (maxUnavailable %s, minAvailable %s) allows %d of %d down" % (
        name, max_unavailable, min_available, max(allowed, 0), replicas)
    if replicas <= 1 and stateful:
        return allowed <= 0, text + ("" if allowed <= 0 else "; a single stateful replica needs maxUnavailable 0")
    if replicas <= 1:
        return True, text
    return 1 <= allowed < replicas, text + ("" if 1 <= allowed < replicas else
                                            "; a safe budget allows at least one and fewer than all")


def safety_gates(workload, pods, pdbs, now, restart_bound=3, volumes=None, guardrails=None,
                 stateful=False):
    """Runbook 002 section 3.1: [{"name", "passed", "evidence"}] for one workload.

    ``pods``: its pods. ``now``: an aware datetime. ``volumes``: per Longhorn volume of
    the app, ``{"name", "robustness", "nodes"}`` (None when it has none). ``guardrails``:
    ``{"tainted": bool, "strays": [pods on the secondary node that did not opt in]}``."""
    gates = []
    statuses = [(p["metadata"]["name"], s) for p in pods
                for s in p.get("status", {}).get("containerStatuses") or []]
    crashing = sorted("%s/%s" % (pod, s["name"]) for pod, s in statuses
                      if (s.get("state", {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff")
    gates.append({"name": "no CrashLoopBackOff", "passed": not crashing,
                  "evidence": ", ".join(crashing) or "%d container(s), none crash-looping" % len(statuses)})
    hour_ago = now - datetime.timedelta(hours=1)
    recent = []
    for pod, s in statuses:
        finished = _parse_time(((s.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))
        if s.get("restartCount", 0) and finished is not None and finished >= hour_ago:
            recent.append((pod, s["name"], s["restartCount"]))
    too_many = [r for r in recent if r[2] > restart_bound]
    gates.append({"name": "restarts in the last hour at most %d" % restart_bound, "passed": not too_many,
                  "evidence": "; ".join("%s/%s restarted %d times, the last within the hour" % r for r in recent)
                  or "no restart within the hour"})
    containers = _pod_spec(workload).get("containers") or []
    no_probe = ["%s (%s)" % (c["name"], ", ".join(k for k in ("readinessProbe", "livenessProbe") if not c.get(k)))
                for c in containers if not (c.get("readinessProbe") and c.get("livenessProbe"))]
    not_ready = sorted(p["metadata"]["name"] for p in pods
                       if not any(c.get("type") == "Ready" and c.get("status") == "True"
                                  for c in p.get("status", {}).get("conditions") or []))
    gates.append({"name": "probes present and green", "passed": not no_probe and not not_ready and bool(pods),
                  "evidence": "; ".join(["no " + x for x in no_probe] + ["not Ready: " + n for n in not_ready])
                  or ("%d pod(s) Ready with readiness and liveness probes" % len(pods) if pods else "no pod runs")})
    labels = workload.get("spec", {}).get("template", {}).get("metadata", {}).get("labels") or {}
    passed, evidence = pdb_verdict(pdbs, labels, int(workload.get("spec", {}).get("replicas", 1)), stateful)
    gates.append({"name": "PodDisruptionBudget present and appropriate", "passed": passed, "evidence": evidence})
    missing = []
    for c in containers:
        absent = [r for r in ("cpu", "memory") if r not in ((c.get("resources") or {}).get("requests") or {})]
        if absent:
            missing.append("%s (%s)" % (c["name"], ", ".join(absent)))
    gates.append({"name": "resource requests set", "passed": not missing,
                  "evidence": "no requests: " + "; ".join(missing) if missing else "cpu and memory requests on every container"})
    if volumes is not None:
        bad = ["%s is %s on %s" % (v["name"], v["robustness"], ", ".join(v["nodes"]) or "no node")
               for v in volumes if v["robustness"] != "healthy" or len(set(v["nodes"])) != len(v["nodes"])
               or len(v["nodes"]) < 2]
        placed = ", ".join("%s on %s" % (v["name"], ", ".join(v["nodes"])) for v in volumes)
        gates.append({"name": "Longhorn volumes healthy, one replica per node", "passed": not bad,
                      "evidence": "; ".join(bad) or placed or "no Longhorn volume"})
    if guardrails is not None:
        gates.append({"name": "guardrails intact", "passed": guardrails["tainted"] and not guardrails["strays"],
                      "evidence": "; ".join((["the secondary lane is not tainted"] if not guardrails["tainted"] else [])
                                            + ["not opted in: " + s for s in guardrails["strays"]])
                      or "secondary lane tainted; nothing on it that did not opt in"})
    return gates


def strays_on(pods, lane_taint):
    """Pods (as the API returns them) on the secondary node that did not opt in: no
    DaemonSet owns them and they do not tolerate the lane taint. A pod can be there only
    from before the taint (NoSchedule does not evict)."""
    out = []
    for p in pods:
        if pod_owner(p)[0] == "DaemonSet":
            continue
        if lane_taint and any(toleration_tolerates(t, lane_taint) for t in p.get("spec", {}).get("tolerations") or []):
            continue
        out.append("%s/%s" % (p["metadata"]["namespace"], p["metadata"]["name"]))
    return sorted(out)


def guardrails_state(node, pods, lane_taint):
    """The guardrails gate's input: whether ``node`` carries ``lane_taint`` and which of
    its ``pods`` did not opt in."""
    wanted = dict((k, v) for k, v in (lane_taint or {}).items() if k in ("key", "value", "effect") and v)
    return {"tainted": bool(wanted) and wanted in node_summary(node)["taints"],
            "strays": strays_on(pods, lane_taint)}


def gates_report(app, classification, refusal, gates):
    lines = ["%s: %s (%s)" % (app, classification["class"], classification["reason"])]
    if refusal:
        lines.append("REFUSED: " + refusal)
    lines += ["  [%s] %s: %s" % ("pass" if g["passed"] else "FAIL", g["name"], g["evidence"]) for g in gates]
    return lines


HPA_PAUSED = {"scaleUp": {"selectPolicy": "Disabled"}, "scaleDown": {"selectPolicy": "Disabled"}}


def _paused(behavior):
    """The HPA's behavior with both directions disabled, its other settings kept (a
    whole ``spec.behavior`` is written, so the prior one restores exactly, absent included)."""
    out = copy.deepcopy(behavior or {})
    for direction, policy in HPA_PAUSED.items():
        out[direction] = dict(out.get(direction) or {}, **policy)
    return out


def window_holds(hpas, applications, deployments, namespace):
    """workload_fields arguments that hold an app still for a cutover window:

    - every HorizontalPodAutoscaler whose target is one of ``deployments`` gets both
      scaling directions ``selectPolicy: Disabled`` (autoscaling/v2's own off switch;
      the HPA object, its bounds and metrics stay as they are);
    - every Argo CD Application in ``applications`` that syncs automatically goes to
      manual sync (``spec.syncPolicy.automated`` removed), so it does not revert the
      change from Git during the window.

    workload_fields returns the prior values, which restore both afterwards."""
    holds = []
    for hpa in sorted(hpas, key=lambda h: h["metadata"]["name"]):
        target = hpa.get("spec", {}).get("scaleTargetRef") or {}
        if target.get("kind") == "Deployment" and target.get("name") in deployments:
            holds.append({"kind": "HorizontalPodAutoscaler", "api_version": "autoscaling/v2",
                          "name": hpa["metadata"]["name"], "namespace": namespace, "wait": False,
                          "fields": {"spec.behavior": _paused(hpa["spec"].get("behavior"))}})
    for app in sorted(applications, key=lambda a: a["metadata"]["name"]):
        if (app.get("spec", {}).get("syncPolicy") or {}).get("automated") is not None:
            holds.append({"kind": "Application", "api_version": "argoproj.io/v1alpha1",
                          "name": app["metadata"]["name"], "namespace": app["metadata"]["namespace"],
                          "wait": False, "fields": {"spec.syncPolicy.automated": None}})
    return holds


HOLD_WHAT = {"HorizontalPodAutoscaler": "scaling paused (both directions Disabled)",
             "Application": "manual sync (automated sync removed)"}


def hold_text(hold, note=None):
    """One hold of the window as a person reads it:
    ``HorizontalPodAutoscaler apps/web: scaling paused (both directions Disabled)``."""
    text = "%s %s/%s: %s" % (hold.get("kind"), hold.get("namespace"), hold.get("name"),
                             HOLD_WHAT.get(hold.get("kind"), "held"))
    return text + (" (%s)" % note if note else "")


def app_ref(app):
    """The app to migrate as ``{namespace, workload}``: a dict is taken as it is, a string
    ``namespace/workload`` (what a survey or a Semaphore variable can carry) is split.
    Anything else gives ``{}``, which the role's input check names."""
    if isinstance(app, dict):
        return app
    if isinstance(app, str) and app.count("/") == 1:
        namespace, workload = [x.strip() for x in app.split("/", 1)]
        if namespace and workload:
            return {"namespace": namespace, "workload": workload}
    return {}
