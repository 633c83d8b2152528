# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure placement facts: node state, who runs where, and how workloads are pinned.

Input is plain API objects (dicts as the API returns them, camelCase or the
Python client's snake_case); output is plain data. No I/O here.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.homelab.k8s_ha.plugins.module_utils.scheduling import (
    field,
    placement,
    taint_text,
)

# Kinds audited, with the API version and where the pod template sits.
WORKLOAD_KINDS = (
    ("Deployment", "apps/v1"),
    ("StatefulSet", "apps/v1"),
    ("DaemonSet", "apps/v1"),
    ("ReplicaSet", "apps/v1"),
    ("Job", "batch/v1"),
    ("CronJob", "batch/v1"),
)


def node_summary(node):
    conditions = field(node, "status", "conditions") or []
    ready = [c for c in conditions if c.get("type") == "Ready"]
    taints = [dict((k, t.get(k)) for k in ("key", "value", "effect") if t.get(k) is not None)
              for t in (field(node, "spec", "taints") or [])]
    return {
        "name": field(node, "metadata", "name"),
        "ready": bool(ready) and ready[0].get("status") == "True",
        "unschedulable": bool(field(node, "spec", "unschedulable")),
        "taints": taints,
        "labels": dict(field(node, "metadata", "labels") or {}),
    }


def pod_owner(pod):
    """(kind, name) of the controlling owner, or (None, None) for a bare pod."""
    owners = field(pod, "metadata", "ownerReferences") or []
    ctrl = [o for o in owners if o.get("controller")] or owners
    if not ctrl:
        return None, None
    return ctrl[0].get("kind"), ctrl[0].get("name")


def pod_summary(pod):
    kind, name = pod_owner(pod)
    return {
        "namespace": field(pod, "metadata", "namespace"),
        "name": field(pod, "metadata", "name"),
        "node": field(pod, "spec", "nodeName"),
        "phase": field(pod, "status", "phase"),
        "owner_kind": kind,
        "owner_name": name,
        "daemonset": kind == "DaemonSet",
    }


def pod_template_spec(obj):
    """The pod spec a workload object creates (CronJob: through its jobTemplate)."""
    kind = obj.get("kind")
    if kind == "Pod":
        return field(obj, "spec") or {}
    if kind == "CronJob":
        return field(obj, "spec", "jobTemplate", "spec", "template", "spec") or {}
    return field(obj, "spec", "template", "spec") or {}


def pinning(spec):
    """How a pod spec is pinned to nodes: the strongest mechanism it uses."""
    if field(spec, "nodeName"):
        return "nodeName"
    if field(spec, "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution"):
        return "affinity"
    if field(spec, "nodeSelector"):
        return "nodeSelector"
    return "none"


def workload_summary(obj, nodes=(), if_schedulable=()):
    spec = pod_template_spec(obj)
    where = placement(spec, nodes, obj.get("kind"), if_schedulable)
    return dict(where, **{
        "kind": obj.get("kind"),
        "namespace": field(obj, "metadata", "namespace"),
        "name": field(obj, "metadata", "name"),
        "pinning": pinning(spec),
        "node_name": field(spec, "nodeName"),
        "node_selector": dict(field(spec, "nodeSelector") or {}),
        "tolerations": list(field(spec, "tolerations") or []),
    })


def is_owned_by_workload(obj):
    """A ReplicaSet/Job whose owner is itself audited is reported through that owner."""
    kind, _name = pod_owner(obj)
    return kind in ("Deployment", "CronJob")


def audit(nodes, pods, workloads, if_schedulable=None):
    """The placement facts of a cluster from one LIST per kind.

    ``workloads`` is every object of WORKLOAD_KINDS; ReplicaSets and Jobs owned by a
    Deployment or CronJob are folded into their owner. Bare pods (no owner) are
    reported as workloads of kind Pod. ``if_schedulable`` names the nodes to
    evaluate as if uncordoned (default: every cordoned node)."""
    if if_schedulable is None:
        if_schedulable = [field(n, "metadata", "name") for n in nodes
                          if field(n, "spec", "unschedulable")]
    node_rows = sorted((node_summary(n) for n in nodes), key=lambda n: n["name"])
    pod_rows = [pod_summary(p) for p in pods]
    by_node = dict((n["name"], []) for n in node_rows)
    for p in pod_rows:
        if p["node"]:
            by_node.setdefault(p["node"], []).append(p)
    for rows in by_node.values():
        rows.sort(key=lambda p: (p["namespace"], p["name"]))
    wl = [workload_summary(w, nodes, if_schedulable)
          for w in workloads if not is_owned_by_workload(w)]
    wl += [workload_summary(dict(p, kind="Pod"), nodes, if_schedulable)
           for p in pods if pod_owner(p) == (None, None)]
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
        "if_schedulable": sorted(if_schedulable),
        # node -> the workloads (not DaemonSets) that could land there once it is uncordoned
        "could_land_on": dict(
            (n, ["%s/%s" % (w["namespace"], w["name"]) for w in wl
                 if w["kind"] != "DaemonSet" and n in w["would_run_on"]
                 and n not in w["may_run_on"]])
            for n in if_schedulable),
    }


def render_report(facts, focus_node=None):
    """Lines a person reads: nodes, pods on the focus node, workload pinning."""
    lines = ["Nodes:"]
    for n in facts["nodes"]:
        state = ["Ready" if n["ready"] else "NotReady"]
        if n["unschedulable"]:
            state.append("SchedulingDisabled")
        taints = ", ".join(taint_text(t) for t in n["taints"]) or "none"
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
        lines.append("  %-12s %s/%s: %s; may run on: %s" % (
            w["kind"], w["namespace"], w["name"], how, ", ".join(w["may_run_on"]) or "no node"))
    if facts["unguarded"]:
        lines.append("Unguarded (no nodeName, nodeSelector or required affinity): "
                     + ", ".join("%s/%s" % (w["namespace"], w["name"])
                                 for w in facts["unguarded"]))
    for node in facts["if_schedulable"]:
        landing = facts["could_land_on"][node]
        lines.append("If %s were uncordoned, these could land on it: %s"
                     % (node, ", ".join(landing) or "none"))
    return lines


def _event_time(event):
    """The latest time an Event says it happened (core/v1 view of either events API)."""
    times = [field(event, "lastTimestamp"), field(event, "eventTime"),
             field(event, "series", "lastObservedTime"), field(event, "firstTimestamp"),
             field(event, "metadata", "creationTimestamp")]
    return max(str(t) for t in times if t)


def failed_scheduling_since(events, since):
    """FailedScheduling events that happened at or after ``since`` (RFC 3339, UTC).

    Timestamps of the API compare correctly as strings once cut to whole seconds."""
    cutoff = since[:19]
    out = []
    for e in events:
        if field(e, "reason") != "FailedScheduling":
            continue
        when = _event_time(e)
        if when[:19] < cutoff:
            continue
        out.append({"namespace": field(e, "involvedObject", "namespace"),
                    "pod": field(e, "involvedObject", "name"),
                    "message": field(e, "message"), "time": when})
    return sorted(out, key=lambda e: (e["time"], e["namespace"] or "", e["pod"] or ""))
