# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure placement facts: node state, who runs where, and how workloads are pinned.

Input is plain API objects (dicts as the API returns them, camelCase or the
Python client's snake_case); output is plain data. No I/O here.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import fnmatch
import json
import re

from ansible_collections.homelab.k8s_ha.plugins.module_utils.longhorn import with_toleration
from ansible_collections.homelab.k8s_ha.plugins.module_utils.scheduling import (
    field,
    pinning_blockers,
    placement,
    taint_text,
    toleration_tolerates,
)

# Kinds audited, with the API version and where the pod template sits.
WORKLOAD_KINDS = (
    ("Deployment", "apps/v1"),
    ("StatefulSet", "apps/v1"),
    ("DaemonSet", "apps/v1"),
    ("ReplicaSet", "apps/v1"),
    ("Job", "batch/v1"),
    ("CronJob", "batch/v1"),
    ("ReplicationController", "v1"),
)
# The controllers of WORKLOAD_KINDS that own pods: their pods are audited through them. A
# pod of any other owner (a custom controller, a static pod's Node) or of none is audited
# as a workload of kind Pod: nothing reschedules it for us, and its own spec decides.
POD_CONTROLLERS = ("ReplicaSet", "StatefulSet", "DaemonSet", "Job", "ReplicationController")


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


def guard_verdict(spec, nodes, guard=None):
    """Whether a pod spec's own placement fields keep it off the nodes named in ``guard``
    (scheduling.pinning_blockers), by effect: ``{"guarded", "kept_off"}`` where kept_off
    maps each node the spec is kept off to the reasons. With no ``guard`` nodes, guarded
    means kept off at least one node of ``nodes`` (pinned somewhere at all)."""
    kept_off = {}
    for node in nodes:
        reasons = pinning_blockers(spec, node)
        if reasons:
            kept_off[field(node, "metadata", "name")] = reasons
    if guard:
        guarded = all(n in kept_off for n in guard)
    else:
        guarded = bool(kept_off)
    return {"guarded": guarded, "kept_off": kept_off}


def workload_summary(obj, nodes=(), if_schedulable=(), guard=None):
    spec = pod_template_spec(obj)
    where = placement(spec, nodes, obj.get("kind"), if_schedulable)
    where.update(guard_verdict(spec, nodes, guard))
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


def audit(nodes, pods, workloads, if_schedulable=None, guard=None):
    """The placement facts of a cluster from one LIST per kind.

    ``workloads`` is every object of WORKLOAD_KINDS; ReplicaSets and Jobs owned by a
    Deployment or CronJob are folded into their owner. Pods with no owner, or an owner
    that is not one of POD_CONTROLLERS, are reported as workloads of kind Pod.
    ``if_schedulable`` names the nodes to evaluate as if uncordoned (default: every
    cordoned node). ``guard`` names the nodes a workload must be kept off by its own spec
    to count as guarded (default: ``if_schedulable``); ``unguarded`` lists the others."""
    if if_schedulable is None:
        if_schedulable = [field(n, "metadata", "name") for n in nodes
                          if field(n, "spec", "unschedulable")]
    if guard is None:
        guard = list(if_schedulable)
    node_rows = sorted((node_summary(n) for n in nodes), key=lambda n: n["name"])
    pod_rows = [pod_summary(p) for p in pods]
    by_node = dict((n["name"], []) for n in node_rows)
    for p in pod_rows:
        if p["node"]:
            by_node.setdefault(p["node"], []).append(p)
    for rows in by_node.values():
        rows.sort(key=lambda p: (p["namespace"], p["name"]))
    wl = [workload_summary(w, nodes, if_schedulable, guard)
          for w in workloads if not is_owned_by_workload(w)]
    wl += [dict(workload_summary(dict(p, kind="Pod"), nodes, if_schedulable, guard), owner_kind=pod_owner(p)[0])
           for p in pods if pod_owner(p)[0] not in POD_CONTROLLERS]
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
        "unguarded": [w for w in wl if not w["guarded"] and w["kind"] != "DaemonSet"],
        "guard": sorted(guard),
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
        lines.append("Unguarded (nothing in their own spec keeps them off %s): "
                     % (" and ".join(facts["guard"]) or "any node")
                     + ", ".join("%s/%s" % (w["namespace"], w["name"])
                                 for w in facts["unguarded"]))
    for node in facts["if_schedulable"]:
        landing = facts["could_land_on"][node]
        lines.append("If %s were uncordoned, these could land on it: %s"
                     % (node, ", ".join(landing) or "none"))
    return lines


def _event_time(event):
    """When an Event says its latest occurrence was observed (core/v1 view of either events
    API): the series' last observation, the event time, the deprecated timestamps. Not when
    it was written: the recorder writes asynchronously, and under load its create lands
    seconds after the scheduling attempt, which may be after the pod was bound; the
    creation time is used only for an event that carries no other time."""
    times = [field(event, "series", "lastObservedTime"), field(event, "eventTime"),
             field(event, "lastTimestamp"), field(event, "firstTimestamp")]
    times = [str(t) for t in times if t] or [str(field(event, "metadata", "creationTimestamp") or "")]
    return max(times)


def _fraction(stamp):
    """The sub-second digits of an RFC 3339 time as microseconds, or None (whole seconds)."""
    m = re.match(r"\.(\d+)", stamp[19:])
    return None if m is None else int((m.group(1) + "000000")[:6])


def at_or_after(when, since):
    """Whether the UTC time ``when`` is at or after ``since`` (both RFC 3339 in UTC). Whole
    seconds compare as strings; within the same second the fractions decide when both have
    one, and otherwise the event counts (it may have been after)."""
    if when[:19] != since[:19]:
        return when[:19] > since[:19]
    a, b = _fraction(when), _fraction(since)
    return a is None or b is None or a >= b


_UTC_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(\.\d+)?(?:[Zz]|[+-]00:00)$")


def utc_time(value, option="events_since"):
    """``(time, error)``: ``value`` as at_or_after compares it (RFC 3339 in UTC, upper-case
    ``T`` and ``Z``, the fraction kept), or None and a message naming ``option`` and what is
    allowed. An offset other than 00:00, a date or time that does not exist, or anything that
    is not RFC 3339 is refused: compared as a string, ``yesterday`` would count no event and
    ``2026-11-21t18:00:00z`` every event of that day."""
    m = _UTC_TIME.match(value) if isinstance(value, str) else None
    if m is not None:
        try:
            datetime.datetime.strptime(m.group(1) + " " + m.group(2), "%Y-%m-%d %H:%M:%S")
        except ValueError:
            m = None
    if m is None:
        return None, ("%s: %s is not an RFC 3339 time in UTC; allowed: YYYY-MM-DDTHH:MM:SS, an optional "
                      "fraction, then Z or +00:00 (for example 2026-11-21T18:00:00Z or 2026-11-21T18:00:00.250000Z)"
                      % (option, json.dumps(value)))
    return "%sT%s%sZ" % (m.group(1), m.group(2), m.group(3) or ""), None


def failed_scheduling_since(events, since, pods=None):
    """FailedScheduling events observed at or after ``since`` (RFC 3339, UTC; at_or_after).

    With ``pods`` (the pods as read now), only events of a pod that still exists count: the
    kube-scheduler's events.k8s.io recorder refreshes an event series long after its pod
    is gone (observed: 12 minutes later, within a Phase 0 watch), which would otherwise
    read as a new failure."""
    alive = None if pods is None else set(
        field(p, "metadata", "uid") or (field(p, "metadata", "namespace"), field(p, "metadata", "name"))
        for p in pods)
    out = []
    for e in events:
        if field(e, "reason") != "FailedScheduling":
            continue
        if alive is not None:
            ref = field(e, "involvedObject") or {}
            key = ref.get("uid") or (ref.get("namespace"), ref.get("name"))
            if key not in alive:
                continue
        when = _event_time(e)
        if not at_or_after(when, since):
            continue
        out.append({"namespace": field(e, "involvedObject", "namespace"),
                    "pod": field(e, "involvedObject", "name"),
                    "message": field(e, "message"), "time": when})
    return sorted(out, key=lambda e: (e["time"], e["namespace"] or "", e["pod"] or ""))


def _retainted(node, taints, add):
    """``node`` without the taints of the same key and effect as ``taints``, and with
    ``taints`` on it when ``add``."""
    given = [dict((k, t.get(k)) for k in ("key", "value", "effect") if t.get(k) is not None)
             for t in taints]
    ids = set((t.get("key"), t.get("effect")) for t in given)
    spec = dict(field(node, "spec") or {})
    spec["taints"] = [t for t in (spec.get("taints") or [])
                      if (t.get("key"), t.get("effect")) not in ids] + (given if add else [])
    return dict(node, spec=spec)


def toleration_for(taint):
    """The toleration of exactly ``taint`` (key, value and effect)."""
    if taint.get("value"):
        return {"key": taint["key"], "operator": "Equal", "value": taint["value"], "effect": taint["effect"]}
    return {"key": taint["key"], "operator": "Exists", "effect": taint["effect"]}


LONGHORN_MANAGED_BY = "longhorn.io/managed-by"  # longhorn-manager's system-managed components
LONGHORN_MANAGER = "longhorn-manager"


def daemonset_manager(ds):
    """Who owns a DaemonSet's spec other than its users: its controlling owner
    (``Kind/name``) or the Longhorn manager (label ``longhorn.io/managed-by``), else None.
    A live edit of such a DaemonSet is undone by that owner."""
    managed = (field(ds, "metadata", "labels") or {}).get(LONGHORN_MANAGED_BY)
    if managed:
        # before the owner: Longhorn's engine image DaemonSet is owned by its EngineImage,
        # and longhorn-manager sets the tolerations of all of them from taint-toleration
        return managed
    kind, name = pod_owner(ds)
    if kind:
        return "%s/%s" % (kind, name)
    return None


def daemonset_coverage(daemonsets, nodes, taints):
    """Per DaemonSet, the nodes it runs on with ``taints`` ({node: [taint]}) on their nodes
    and without them, and the tolerations its pod template lacks for the difference.

    The nodes are the DaemonSet controller's (pkg/controller/daemon NodeShouldRunDaemonPod):
    nodeName, nodeSelector, required node affinity, and NoSchedule/NoExecute taints with
    the tolerations the controller adds (so a cordon does not keep it off). Its
    ``desiredNumberScheduled`` counts those nodes: a NoSchedule taint it does not tolerate
    drops the node from it at once, and a restart of the pod there (an upgrade, a rollout
    restart) does not bring it back."""
    names = [field(n, "metadata", "name") for n in nodes]
    unknown = sorted(set(taints) - set(names))
    if unknown:
        raise ValueError("taints: no node named %s; nodes are: %s"
                         % (", ".join(unknown), ", ".join(sorted(names))))
    with_taints = [_retainted(n, taints.get(field(n, "metadata", "name")) or [], True) for n in nodes]
    without = [_retainted(n, taints.get(field(n, "metadata", "name")) or [], False) for n in nodes]
    rows = []
    for ds in daemonsets:
        spec = pod_template_spec(dict(ds, kind="DaemonSet"))
        on = placement(spec, with_taints, "DaemonSet")
        off = placement(spec, without, "DaemonSet")
        dropped = sorted(set(off["may_run_on"]) - set(on["may_run_on"]))
        own = list(field(spec, "tolerations") or [])
        needed = []
        for node in dropped:
            for t in taints.get(node) or []:
                tol = toleration_for(t)
                if t.get("effect") in ("NoSchedule", "NoExecute") and tol not in needed and not any(
                        toleration_tolerates(x, t) for x in own):
                    needed.append(tol)
        rows.append({
            "namespace": field(ds, "metadata", "namespace"),
            "name": field(ds, "metadata", "name"),
            "desired": field(ds, "status", "desiredNumberScheduled"),
            "covers_without": off["may_run_on"],
            "covers_with": on["may_run_on"],
            "dropped": dropped,
            "why": dict((n, on["blocked"].get(n, [])) for n in dropped),
            "tolerations": own,
            "needed": needed,
            "manager": daemonset_manager(ds),
        })
    return sorted(rows, key=lambda r: (r["namespace"] or "", r["name"]))


def render_coverage(rows, taints):
    """Lines a person reads: which DaemonSets ``taints`` would drop from which nodes."""
    what = "; ".join("%s on %s" % (", ".join(taint_text(t) for t in ts), n)
                     for n, ts in sorted(taints.items()))
    dropped = [r for r in rows if r["dropped"]]
    lines = ["DaemonSets with %s: %d of %d keep every node they run on" % (
        what, len(rows) - len(dropped), len(rows))]
    for r in dropped:
        lines.append("  %s/%s: runs on %s; with the taints only on %s (loses %s: %s)%s" % (
            r["namespace"], r["name"], ", ".join(r["covers_without"]) or "no node",
            ", ".join(r["covers_with"]) or "no node", ", ".join(r["dropped"]),
            "; ".join(sorted(set(x for n in r["dropped"] for x in r["why"][n]))),
            "; managed by %s" % r["manager"] if r["manager"] else ""))
    return lines


def _matches(pattern, namespace, name):
    ns_pat, _slash, name_pat = pattern.partition("/")
    return fnmatch.fnmatchcase(namespace or "", ns_pat) and fnmatch.fnmatchcase(name, name_pat or "*")


def toleration_changes(rows, node_agents):
    """The workload_fields changes that keep each DaemonSet of ``rows``
    (daemonset_coverage) on the nodes the taints would drop it from: its tolerations and
    the ``needed`` ones. Only DaemonSets that ``node_agents`` (``namespace/name`` patterns,
    shell-style) name, and that no owner manages: a live edit of those would be undone
    (see ``unkept``)."""
    if isinstance(node_agents, str) or any(not isinstance(p, str) or "/" not in p for p in node_agents):
        raise ValueError("node_agents must be a list of namespace/name patterns, for example "
                         "['*/*'] or ['metallb-system/*', 'kube-system/kube-proxy']; got %r" % (node_agents,))
    out = []
    for r in rows:
        if r["needed"] and not r["manager"] and any(_matches(p, r["namespace"], r["name"]) for p in node_agents):
            out.append({"kind": "DaemonSet", "api_version": "apps/v1", "namespace": r["namespace"],
                        "name": r["name"], "compare": "exact",
                        "fields": {"spec.template.spec.tolerations": r["tolerations"] + r["needed"]}})
    return out


def longhorn_dropped(rows):
    """The DaemonSets of ``rows`` longhorn-manager manages that the taints drop from a node."""
    return [r for r in rows if r["dropped"] and r["manager"] == LONGHORN_MANAGER]


def longhorn_toleration_changes(rows, settings, taints):
    """The longhorn_settings change that keeps Longhorn's own DaemonSets of ``rows`` on the
    nodes the taints would drop them from: ``{"taint-toleration": value}`` with a toleration
    of each taint added to the current value, or {} when none is dropped or Longhorn's
    Setting ``taint-toleration`` is not among ``settings`` (k8s_info's resources).
    longhorn-manager writes the setting's tolerations into those DaemonSets and undoes a
    live edit of them on its next deploy (an upgrade), so the setting is the one place."""
    dropped = longhorn_dropped(rows)
    current = [s for s in settings or [] if field(s, "metadata", "name") == "taint-toleration"]
    if not dropped or not current:
        return {}
    value = current[0].get("value") or ""
    new = value
    for taint in taints:
        new = with_toleration(new, taint)
    return {} if new == value else {"taint-toleration": new}


def unkept(rows, node_agents, longhorn_kept=False):
    """The DaemonSets of ``rows`` the taints drop from a node and toleration_changes does
    not keep, each with why: ``namespace/name (loses node: managed by X)``. With
    ``longhorn_kept`` (the plan changes Longhorn's taint-toleration), longhorn-manager's
    own DaemonSets are kept."""
    changed = set((c["namespace"], c["name"]) for c in toleration_changes(rows, node_agents))
    out = []
    for r in rows:
        if not r["dropped"] or (r["namespace"], r["name"]) in changed:
            continue
        if longhorn_kept and r["manager"] == LONGHORN_MANAGER:
            continue
        if r["manager"] == "longhorn-manager":
            why = ("managed by longhorn-manager, which undoes a live edit: add the toleration to Longhorn's"
                   " taint-toleration setting (Longhorn applies it while no volume is attached)")
        elif r["manager"]:
            why = "managed by %s, which undoes a live edit: give it the toleration there" % r["manager"]
        elif not r["needed"]:
            why = ", ".join(sorted(set(x for n in r["dropped"] for x in r["why"][n])))
        else:
            why = "not in the node agents the plan may change"
        out.append("%s/%s (loses %s: %s)" % (r["namespace"], r["name"], ", ".join(r["dropped"]), why))
    return out
