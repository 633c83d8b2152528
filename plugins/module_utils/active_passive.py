# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runbook 003 (active-passive with automatic failback), pure: which workloads are pinned
by the strict nodeSelector, the fields that turn the pin into a preference (phase 3), the
PodDisruptionBudget each gets, and the descheduler's manifests (phase 4) corrected for
today's descheduler.

``model`` is the role's one description of the lanes (role defaults, overridable per
inventory)::

    {"pin": {"role": "primary"},                 # the strict nodeSelector to replace
     "priority_label": "workload-priority",      # the label the preferences match
     "preferences": [{"value": "primary", "weight": 100},
                     {"value": "backup", "weight": 10}],
     "backup_taint": {"key": "role", "value": "backup", "effect": "PreferNoSchedule"},
     "toleration_seconds": 30}                   # NoExecute unreachable / not-ready
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json

from ansible_collections.homelab.k8s_ha.plugins.module_utils.scheduling import field

NODE_PROBLEM_TAINTS = ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")
PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"
_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def model_errors(model):
    """What is wrong with the lane model, each naming the variable's field."""
    errors = []
    if not isinstance(model, dict):
        return ["active_passive model: a mapping is required"]
    pin = model.get("pin")
    if not isinstance(pin, dict) or not pin:
        errors.append("pin: the nodeSelector to replace, e.g. {role: primary}")
    if not model.get("priority_label"):
        errors.append("priority_label: the node label the preferences match, e.g. workload-priority")
    prefs = model.get("preferences")
    if not isinstance(prefs, list) or not prefs:
        errors.append("preferences: a list of {value, weight}")
    else:
        for i, p in enumerate(prefs):
            weight = p.get("weight") if isinstance(p, dict) else None
            if not isinstance(p, dict) or not p.get("value") or not isinstance(weight, int) \
                    or isinstance(weight, bool) or not 1 <= weight <= 100:
                errors.append("preferences[%d]: value and an integer weight from 1 to 100 are required" % i)
    taint = model.get("backup_taint")
    if not isinstance(taint, dict) or not taint.get("key") or taint.get("effect") not in _EFFECTS:
        errors.append("backup_taint: key, value and effect (one of %s) are required" % ", ".join(_EFFECTS))
    seconds = model.get("toleration_seconds")
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 0:
        errors.append("toleration_seconds: a whole number of seconds >= 0 is required")
    return errors


def read_targets(targets, deployments):
    """Each target ``{namespace, name}`` with the Deployments of ``deployments`` (the
    preflight's LISTs) that are it: ``[{"item": target, "resources": [..]}]``, as a loop of
    one read per target registers it. An empty ``resources`` is a target that does not exist."""
    found = {}
    for d in deployments:
        found.setdefault((d["metadata"].get("namespace"), d["metadata"]["name"]), []).append(d)
    return [{"item": t, "resources": found.get((t["namespace"], t["name"]), [])} for t in targets]


def pinned(workload, pin):
    """Whether the workload's pod template selects every label of ``pin``."""
    selector = field(workload, "spec", "template", "spec", "nodeSelector") or {}
    return bool(pin) and all(selector.get(k) == v for k, v in pin.items())


def preference_terms(model):
    """The preferred node affinity: one term per lane value, with its weight."""
    return [{"weight": p["weight"], "preference": {"matchExpressions": [
        {"key": model["priority_label"], "operator": "In", "values": [p["value"]]}]}}
        for p in model["preferences"]]


def managed_tolerations(model):
    """The tolerations phase 3 adds: the backup taint's, and NoExecute unreachable and
    not-ready with the model's tolerationSeconds."""
    taint = model["backup_taint"]
    out = [{"key": taint["key"], "operator": "Equal", "value": taint.get("value", ""), "effect": taint["effect"]}]
    out += [{"key": key, "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": model["toleration_seconds"]} for key in NODE_PROBLEM_TAINTS]
    return out


def _same_slot(a, b):
    return a.get("key") == b.get("key") and a.get("effect") == b.get("effect")


def conversion_fields(workload, model):
    """The workload_fields ``fields`` that convert a pinned workload (phase 3):

    - ``nodeSelector``: the pin's keys removed (the field removed when nothing is left);
    - ``affinity``: the existing affinity with the preferred node affinity set;
    - ``tolerations``: the existing ones, those for the same key and effect replaced by
      the managed ones.

    Nothing else; workload_fields returns the prior values for the rollback."""
    errors = model_errors(model)
    if errors:
        raise ValueError("; ".join(errors))
    spec = field(workload, "spec", "template", "spec") or {}
    selector = {k: v for k, v in (spec.get("nodeSelector") or {}).items() if k not in model["pin"]}
    affinity = copy.deepcopy(spec.get("affinity") or {})
    affinity.setdefault("nodeAffinity", {})[PREFERRED] = preference_terms(model)
    ours = managed_tolerations(model)
    kept = [t for t in spec.get("tolerations") or [] if not any(_same_slot(t, o) for o in ours)]
    return {
        "spec.template.spec.nodeSelector": selector or None,
        "spec.template.spec.affinity": affinity,
        "spec.template.spec.tolerations": kept + ours,
    }


def pdb_for(workload, max_unavailable):
    """A PodDisruptionBudget over the workload's pods (the runbook's ``<app>-pdb``)."""
    labels = field(workload, "spec", "selector", "matchLabels")
    if not labels:
        raise ValueError("%s has no spec.selector.matchLabels to build a PodDisruptionBudget from"
                         % field(workload, "metadata", "name"))
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "%s-pdb" % workload["metadata"]["name"],
                         "namespace": workload["metadata"]["namespace"]},
            "spec": {"maxUnavailable": max_unavailable, "selector": {"matchLabels": dict(labels)}}}


def covering_pdbs(workload, pdbs):
    """Names of the PodDisruptionBudgets (same namespace) that select the workload's pods."""
    labels = field(workload, "spec", "template", "metadata", "labels") or {}
    out = []
    for pdb in pdbs:
        if field(pdb, "metadata", "namespace") != field(workload, "metadata", "namespace"):
            continue
        match = field(pdb, "spec", "selector", "matchLabels") or {}
        if match and all(labels.get(k) == v for k, v in match.items()) \
                and not field(pdb, "spec", "selector", "matchExpressions"):
            out.append(pdb["metadata"]["name"])
    return sorted(out)


def descheduler_policy(namespaces, node_fit):
    """The DeschedulerPolicy of runbook 003, in today's format: ``descheduler/v1alpha2``
    with a profile whose RemovePodsViolatingNodeAffinity (a *deschedule* plugin; the
    runbook's manifest enables it under ``balance``, where the descheduler ignores it)
    evicts pods for their preferred node affinity, limited to ``namespaces``."""
    affinity_args = {"nodeAffinityType": [PREFERRED]}
    if namespaces:
        affinity_args["namespaces"] = {"include": sorted(set(namespaces))}
    return {
        "apiVersion": "descheduler/v1alpha2",
        "kind": "DeschedulerPolicy",
        "profiles": [{
            "name": "failback",
            "pluginConfig": [
                {"name": "DefaultEvictor", "args": {"evictFailedBarePods": False, "evictLocalStoragePods": False,
                                                    "evictSystemCriticalPods": False, "nodeFit": bool(node_fit)}},
                {"name": "RemovePodsViolatingNodeAffinity", "args": affinity_args}],
            "plugins": {"deschedule": {"enabled": ["RemovePodsViolatingNodeAffinity"]}},
        }],
    }


def descheduler_rbac_rules():
    """What the descheduler reads and writes today (upstream kubernetes/base/rbac.yaml):
    the runbook's rules miss namespaces, PodDisruptionBudgets, PriorityClasses,
    events.k8s.io and the leader-election Lease, without which it does not start."""
    return [
        {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "update", "patch"]},
        {"apiGroups": [""], "resources": ["nodes", "namespaces"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["scheduling.k8s.io"], "resources": ["priorityclasses"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create", "update"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["descheduler"],
         "verbs": ["get", "patch", "delete"]},
    ]


def descheduler_objects(cfg):
    """The descheduler's objects, in apply order: ServiceAccount, ClusterRole,
    ClusterRoleBinding, the policy ConfigMap, and a CronJob (``mode: cronjob``, every
    ``interval_minutes``) or a Deployment (``mode: deployment``, ``--descheduling-interval``).

    ``cfg``: name, namespace, image, mode, interval_minutes, namespaces, node_fit,
    max_pods_per_node (0: no limit), labels."""
    mode = cfg.get("mode")
    if mode not in ("cronjob", "deployment"):
        raise ValueError("mode: %r is not one of cronjob, deployment" % (mode,))
    minutes = cfg.get("interval_minutes")
    if not isinstance(minutes, int) or isinstance(minutes, bool) or not 1 <= minutes <= 59:
        raise ValueError("interval_minutes: %r is not a whole number of minutes from 1 to 59" % (minutes,))
    name, ns = cfg["name"], cfg["namespace"]
    labels = dict(cfg.get("labels") or {}, **{"app.kubernetes.io/name": name})
    meta = {"name": name, "namespace": ns, "labels": labels}
    policy = descheduler_policy(cfg.get("namespaces") or [], cfg.get("node_fit", True))
    args = ["--policy-config-file=/policy/policy.yaml", "--v=3"]
    if cfg.get("max_pods_per_node"):
        policy["maxNoOfPodsToEvictPerNode"] = int(cfg["max_pods_per_node"])
    pod = {"metadata": {"labels": labels}, "spec": {
        "serviceAccountName": name,
        "priorityClassName": "system-cluster-critical",
        "containers": [{
            "name": "descheduler", "image": cfg["image"], "command": ["/bin/descheduler"], "args": args,
            "volumeMounts": [{"name": "policy", "mountPath": "/policy"}],
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}},
            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}}],
        "volumes": [{"name": "policy", "configMap": {"name": "%s-policy" % name}}]}}
    if mode == "cronjob":
        pod["spec"]["restartPolicy"] = "Never"
        runner = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta, "spec": {
            "schedule": "*/%d * * * *" % minutes, "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
            "jobTemplate": {"spec": {"template": pod}}}}
    else:
        args.append("--descheduling-interval=%dm" % minutes)
        runner = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": {
            "replicas": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": name}}, "template": pod}}
    return _identity(meta, descheduler_rbac_rules()) + [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": dict(meta, name="%s-policy" % name),
         "data": {"policy.yaml": _yaml(policy)}},
        runner,
    ]


def _identity(meta, rules):
    """A ServiceAccount (``meta``: name, namespace, labels) and a ClusterRole of ``rules``
    of the same name bound to it."""
    name = meta["name"]
    cluster_meta = {"name": name, "labels": meta["labels"]}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": cluster_meta,
         "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": cluster_meta,
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": meta["namespace"]}]},
    ]


# The in-cluster runner of the guarded failback (active_passive_failback_runner: cronjob):
# what one pass (playbooks/failback.yml, the failback_guard module) reads and evicts, no more.
FAILBACK_RUNNER_RULES = [
    {"apiGroups": [""], "resources": ["nodes", "pods"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch"]},
]
FAILBACK_PLAYBOOK = "homelab.k8s_ha.failback"  # playbooks/failback.yml of the installed collection


def failback_runner_objects(cfg):
    """The guarded failback's own CronJob, in apply order: ServiceAccount, ClusterRole
    (FAILBACK_RUNNER_RULES), ClusterRoleBinding, CronJob. Every ``interval_minutes`` the
    execution environment ``image`` runs ``ansible-playbook homelab.k8s_ha.failback -e
    <vars>`` as that ServiceAccount (the kubernetes client's in-cluster configuration), one
    pass at a time (concurrencyPolicy Forbid), not retried (the next schedule is the retry).
    It needs no AWX or Semaphore, which in a two-node homelab may run on the failed node.

    ``cfg``: name, namespace, image, interval_minutes, vars (the pass's variables, passed as
    one -e), labels. ValueError names the setting at fault."""
    image = ("%s" % (cfg.get("image") or "")).strip()
    if not image:
        raise ValueError("active_passive_failback_cronjob.image: empty; the CronJob runs the execution environment"
                         " image built from execution-environment.yml (docs/execution_environment.md)")
    minutes = cfg.get("interval_minutes")
    if not isinstance(minutes, int) or isinstance(minutes, bool) or not 1 <= minutes <= 59:
        raise ValueError("active_passive_failback_interval: %r is not a whole number of minutes from 1 to 59"
                         % (minutes,))
    for key in ("name", "namespace"):
        if not ("%s" % (cfg.get(key) or "")).strip():
            raise ValueError("active_passive_failback_cronjob.%s: empty" % key)
    name, ns = cfg["name"], cfg["namespace"]
    labels = dict(cfg.get("labels") or {}, **{"app.kubernetes.io/name": name})
    meta = {"name": name, "namespace": ns, "labels": labels}
    container = {
        "name": "failback", "image": image, "command": ["ansible-playbook"],
        "args": [FAILBACK_PLAYBOOK, "-e", json.dumps(cfg.get("vars") or {}, sort_keys=True, separators=(",", ":"))],
        # ansible writes only under /tmp (an emptyDir): the root filesystem stays read-only.
        # The command replaces the image's entrypoint, which would set HOME: remote_tmp's
        # default (~/.ansible/tmp) is used by the local connection too.
        "env": [{"name": "HOME", "value": "/tmp/home"},
                {"name": "ANSIBLE_HOME", "value": "/tmp/ansible"},
                {"name": "ANSIBLE_LOCAL_TEMP", "value": "/tmp/ansible/tmp"},
                {"name": "ANSIBLE_REMOTE_TMP", "value": "/tmp/ansible/remote"},
                {"name": "ANSIBLE_LOCALHOST_WARNING", "value": "false"},
                {"name": "ANSIBLE_NOCOLOR", "value": "1"}],
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}}
    pod = {"metadata": {"labels": labels}, "spec": {
        "serviceAccountName": name, "restartPolicy": "Never", "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {}}]}}
    return _identity(meta, FAILBACK_RUNNER_RULES) + [
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta, "spec": {
            "schedule": "*/%d * * * *" % minutes, "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 3,
            "jobTemplate": {"spec": {"backoffLimit": 0, "template": pod}}}},
    ]


def _yaml(obj):
    """The policy as the YAML text the descheduler reads (JSON is YAML; stable key order)."""
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def drill_state(pods, workloads):
    """Where each workload's pods are, for the failover drill: ``{"running": {app: [nodes of
    Running pods not being deleted]}, "terminating": {app: [nodes]}, "pending": {app: n}}``.
    ``workloads``: Deployment objects (their ``spec.selector.matchLabels`` pick the pods)."""
    out = {"running": {}, "terminating": {}, "pending": {}}
    for w in workloads:
        app = "%s/%s" % (w["metadata"]["namespace"], w["metadata"]["name"])
        selector = field(w, "spec", "selector", "matchLabels") or {}
        mine = [p for p in pods if field(p, "metadata", "namespace") == w["metadata"]["namespace"] and selector
                and all((field(p, "metadata", "labels") or {}).get(k) == v for k, v in selector.items())]
        out["running"][app] = sorted(field(p, "spec", "nodeName") for p in mine
                                     if field(p, "status", "phase") == "Running"
                                     and not field(p, "metadata", "deletionTimestamp"))
        out["terminating"][app] = sorted(field(p, "spec", "nodeName") or "-" for p in mine
                                         if field(p, "metadata", "deletionTimestamp"))
        out["pending"][app] = len([p for p in mine if field(p, "status", "phase") == "Pending"
                                   and not field(p, "metadata", "deletionTimestamp")])
    return out


def drill_settled(state, node):
    """Every workload runs only on ``node``, with no pod Pending or being deleted anywhere."""
    return all(nodes and set(nodes) == {node} for nodes in state["running"].values()) and \
        not any(state["terminating"].values()) and not any(state["pending"].values())


def drill_none_on(state, node):
    """No workload has a live (Running, not being deleted) pod on ``node``: they were evicted."""
    return not any(node in nodes for nodes in state["running"].values())


def drill_check(pods, workloads, test, node):
    """One of the drill's conditions over the pods: ``settled`` (drill_settled), ``evicted``
    (drill_none_on) or ``running`` (every workload has a live pod and all on ``node``)."""
    state = drill_state(pods, workloads)
    if test == "settled":
        return drill_settled(state, node)
    if test == "evicted":
        return drill_none_on(state, node)
    if test == "running":
        return all(nodes and set(nodes) == {node} for nodes in state["running"].values())
    raise ValueError("test: %r is not one of settled, evicted, running" % (test,))


# -- the drill's waits: one line per change of state, not per read -------------------------
DRILL_CONDITIONS = ("node_not_ready", "node_ready", "settled", "evicted", "running")


def drill_node_text(node, name):
    """A node as the drill's node waits see it: ``k3s-w1 Ready=Unknown`` (``gone`` when absent)."""
    if not node:
        return "%s gone" % name
    ready = [c.get("status") for c in field(node, "status", "conditions") or [] if c.get("type") == "Ready"]
    return "%s Ready=%s" % (name, ready[0] if ready else "unknown")


def drill_pods_text(state):
    """The drill's pod state (drill_state) as one line: per workload, the nodes of its live
    pods and the pods being deleted or pending."""
    parts = []
    for app in sorted(state["running"]):
        running = state["running"][app]
        text = "%s: %s" % (app, ("Running on " + ", ".join(running)) if running else "no pod Running")
        if state["terminating"].get(app):
            text += ", terminating on " + ", ".join(state["terminating"][app])
        if state["pending"].get(app):
            text += ", %d Pending" % state["pending"][app]
        parts.append(text)
    return "; ".join(parts) or "no workload"


def drill_observe(condition, node_name, node=None, pods=None, workloads=None):
    """One read of a drill wait: ``(met, text)``. ``condition``: node_not_ready or
    node_ready (``node``, the Node object or None) or a drill_check test over ``pods``."""
    if condition in ("node_not_ready", "node_ready"):
        text = drill_node_text(node, node_name)
        ready = text == "%s Ready=True" % node_name
        return (ready if condition == "node_ready" else not ready), text
    if condition not in DRILL_CONDITIONS:
        raise ValueError("condition: %r is not one of %s" % (condition, ", ".join(DRILL_CONDITIONS)))
    return drill_check(pods or [], workloads or [], condition, node_name), \
        drill_pods_text(drill_state(pods or [], workloads or []))


class Transitions(object):
    """The changes of a wait's state: each new text with the seconds since the wait began
    (``t``) and the wall-clock time (``at``, epoch seconds), the first read included."""

    def __init__(self):
        self.items = []

    def see(self, t, at, text):
        if not self.items or self.items[-1]["state"] != text:
            self.items.append({"t": round(t, 1), "at": at, "state": text})
            return True
        return False

    def lines(self, what):
        return ["%s: +%.1f s %s" % (what, x["t"], x["state"]) for x in self.items]


# Runbook 003's own estimates (phase 5 timelines and phase 6 tuning), beside the drill's numbers.
RUNBOOK_ESTIMATES = {
    "notready": "T+40s",
    "evicted": "T+5m00s (default toleration); about 1 min tuned (30 s)",
    "failover": "T+6m00s; about 1 min tuned",
    "ready": "T+1m after power-on",
    "back": "about 5-5.5 min after Ready (T+6m30s after power-on; 6-7 min in all)",
    "restart": "immediately, on w1 (no detour to w2)",
}
_PHASES = (
    ("failover", "notready", "down", "node NotReady"),
    ("failover", "evicted", "down", "pods evicted from the node"),
    ("failover", "failover", "down", "pods Running on the backup node"),
    ("failback", "ready", "up", "node Ready"),
    ("failback", "back", "ready", "pods back on the primary node (from Ready)"),
    ("restart", "restart", "deleted", "a deleted pod Running again on the primary node"),
)


def drill_report(marks, toleration_seconds, scenario_one, health=None):
    """The drill's results from its time marks (epoch seconds; a missing mark is a step
    that did not complete): timings in seconds, one check per scenario, and a table a
    person reads with the runbook's estimates beside the measured numbers. ``health``
    maps a scenario ("2. failover") to app_health_info's checks after it: each becomes a
    check of its own, named after the scenario."""
    timings = {}
    for _group, mark, since, _text in _PHASES:
        if mark in marks and since in marks:
            timings[mark] = round(marks[mark] - marks[since], 1)
    checks = [
        {"name": "1. normal placement", "passed": bool(scenario_one), "detail": "every workload on the primary node"},
        {"name": "2. failover", "passed": "failover" in timings,
         "detail": "Running on the backup node after %s s" % timings.get("failover", "-")},
        {"name": "3. failback", "passed": "back" in timings,
         "detail": "back on the primary node %s s after Ready" % timings.get("back", "-")},
        {"name": "4. pod restart stays", "passed": "restart" in timings,
         "detail": "Running on the primary node after %s s" % timings.get("restart", "-")},
    ]
    for scenario, found in sorted((health or {}).items()):
        checks += [dict(c, name="%s: %s" % (scenario, c["name"])) for c in found or []]
    lines = ["tolerationSeconds %s" % toleration_seconds, "",
             "| step | measured | runbook |", "|---|---|---|"]
    for group, mark, since, text in _PHASES:
        measured = "%.1f s after %s" % (timings[mark], {"down": "down", "up": "up", "ready": "Ready",
                                                        "deleted": "the delete"}[since]) \
            if mark in timings else "not reached"
        lines.append("| %s: %s | %s | %s |" % (group, text, measured, RUNBOOK_ESTIMATES[mark]))
    return {"timings": timings, "checks": checks, "report": lines}
