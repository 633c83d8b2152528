# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure placement facts: node state, who runs where, and how workloads are pinned.

Input is plain API objects (dicts as the API returns them, camelCase or the
Python client's snake_case); output is plain data. No I/O here.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Kinds audited, with the API version and where the pod template sits.
WORKLOAD_KINDS = (
    ("Deployment", "apps/v1"),
    ("StatefulSet", "apps/v1"),
    ("DaemonSet", "apps/v1"),
    ("ReplicaSet", "apps/v1"),
    ("Job", "batch/v1"),
    ("CronJob", "batch/v1"),
)


def _get(obj, *keys):
    """obj[k1][k2]..., accepting camelCase or snake_case keys; None when absent."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        if key in obj:
            obj = obj[key]
            continue
        snake = "".join("_" + c.lower() if c.isupper() else c for c in key)
        obj = obj.get(snake)
    return obj


def node_summary(node):
    conditions = _get(node, "status", "conditions") or []
    ready = [c for c in conditions if c.get("type") == "Ready"]
    taints = [dict((k, t.get(k)) for k in ("key", "value", "effect") if t.get(k) is not None)
              for t in (_get(node, "spec", "taints") or [])]
    return {
        "name": _get(node, "metadata", "name"),
        "ready": bool(ready) and ready[0].get("status") == "True",
        "unschedulable": bool(_get(node, "spec", "unschedulable")),
        "taints": taints,
        "labels": dict(_get(node, "metadata", "labels") or {}),
    }


def pod_owner(pod):
    """(kind, name) of the controlling owner, or (None, None) for a bare pod."""
    owners = _get(pod, "metadata", "ownerReferences") or []
    ctrl = [o for o in owners if o.get("controller")] or owners
    if not ctrl:
        return None, None
    return ctrl[0].get("kind"), ctrl[0].get("name")


def pod_summary(pod):
    kind, name = pod_owner(pod)
    return {
        "namespace": _get(pod, "metadata", "namespace"),
        "name": _get(pod, "metadata", "name"),
        "node": _get(pod, "spec", "nodeName"),
        "phase": _get(pod, "status", "phase"),
        "owner_kind": kind,
        "owner_name": name,
        "daemonset": kind == "DaemonSet",
    }


def pod_template_spec(obj):
    """The pod spec a workload object creates (CronJob: through its jobTemplate)."""
    kind = obj.get("kind")
    if kind == "Pod":
        return _get(obj, "spec") or {}
    if kind == "CronJob":
        return _get(obj, "spec", "jobTemplate", "spec", "template", "spec") or {}
    return _get(obj, "spec", "template", "spec") or {}


def pinning(spec):
    """How a pod spec is pinned to nodes: the strongest mechanism it uses."""
    if _get(spec, "nodeName"):
        return "nodeName"
    if _get(spec, "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution"):
        return "affinity"
    if _get(spec, "nodeSelector"):
        return "nodeSelector"
    return "none"


def workload_summary(obj):
    spec = pod_template_spec(obj)
    return {
        "kind": obj.get("kind"),
        "namespace": _get(obj, "metadata", "namespace"),
        "name": _get(obj, "metadata", "name"),
        "pinning": pinning(spec),
        "node_name": _get(spec, "nodeName"),
        "node_selector": dict(_get(spec, "nodeSelector") or {}),
        "tolerations": list(_get(spec, "tolerations") or []),
    }


def is_owned_by_workload(obj):
    """A ReplicaSet/Job whose owner is itself audited is reported through that owner."""
    kind, _name = pod_owner(obj)
    return kind in ("Deployment", "CronJob")


def audit(nodes, pods, workloads):
    """The placement facts of a cluster from one LIST per kind.

    ``workloads`` is every object of WORKLOAD_KINDS; ReplicaSets and Jobs owned by a
    Deployment or CronJob are folded into their owner. Bare pods (no owner) are
    reported as workloads of kind Pod."""
    node_rows = sorted((node_summary(n) for n in nodes), key=lambda n: n["name"])
    pod_rows = [pod_summary(p) for p in pods]
    by_node = dict((n["name"], []) for n in node_rows)
    for p in pod_rows:
        if p["node"]:
            by_node.setdefault(p["node"], []).append(p)
    for rows in by_node.values():
        rows.sort(key=lambda p: (p["namespace"], p["name"]))
    wl = [workload_summary(w) for w in workloads if not is_owned_by_workload(w)]
    wl += [workload_summary(dict(p, kind="Pod")) for p in pods if pod_owner(p) == (None, None)]
    wl.sort(key=lambda w: (w["namespace"] or "", w["kind"], w["name"]))
    return {
        "nodes": node_rows,
        "pods_by_node": by_node,
        "non_daemonset_pods": dict((n, [p for p in rows if not p["daemonset"]])
                                   for n, rows in by_node.items()),
        "pending_pods": sorted(
            ((p["namespace"], p["name"]) for p in pod_rows
             if not p["node"] and p["phase"] == "Pending")),
        "workloads": wl,
        "unguarded": [w for w in wl if w["pinning"] == "none" and w["kind"] != "DaemonSet"],
    }


def _taint_text(t):
    key = t["key"] + ("=" + t["value"] if t.get("value") else "")
    return "%s:%s" % (key, t["effect"])


def render_report(facts, focus_node=None):
    """Lines a person reads: nodes, pods on the focus node, workload pinning."""
    lines = ["Nodes:"]
    for n in facts["nodes"]:
        state = ["Ready" if n["ready"] else "NotReady"]
        if n["unschedulable"]:
            state.append("SchedulingDisabled")
        taints = ", ".join(_taint_text(t) for t in n["taints"]) or "none"
        lines.append("  %-14s %-28s taints: %s" % (n["name"], ",".join(state), taints))
    nodes = [focus_node] if focus_node else sorted(facts["pods_by_node"])
    for name in nodes:
        pods = facts["pods_by_node"].get(name, [])
        other = facts["non_daemonset_pods"].get(name, [])
        lines.append("Pods on %s: %d (%d not from a DaemonSet)" % (name, len(pods), len(other)))
        for p in pods:
            lines.append("  %s/%s  %s %s" % (p["namespace"], p["name"],
                                             p["owner_kind"] or "bare Pod", p["phase"]))
    lines.append("Workload pinning:")
    for w in facts["workloads"]:
        how = w["pinning"]
        if how == "nodeName":
            how += "=" + w["node_name"]
        elif how == "nodeSelector":
            how += " " + ",".join("%s=%s" % kv for kv in sorted(w["node_selector"].items()))
        lines.append("  %-12s %s/%s: %s" % (w["kind"], w["namespace"], w["name"], how))
    if facts["unguarded"]:
        lines.append("Unguarded (no nodeName, nodeSelector or required affinity): "
                     + ", ".join("%s/%s" % (w["namespace"], w["name"])
                                 for w in facts["unguarded"]))
    return lines
