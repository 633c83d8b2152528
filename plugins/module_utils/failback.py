# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runbook 003's failback guard, pure: may a pod be evicted so that it returns to its
preferred node?

The descheduler's RemovePodsViolatingNodeAffinity evicts a pod whenever a Ready node has
a higher preferred-affinity weight than the node it runs on. It does not check cordon,
taints or capacity (descheduler issues #1707, #1410, #1236), so a Ready but cordoned
preferred node makes it evict the same pod on every pass. The guard lets failback evict
only when the pod can actually land there: the preferred node has been Ready for a
stabilisation window, is schedulable, has no taint the pod does not tolerate, matches its
required placement, and has room for its requests.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re

from ansible_collections.homelab.k8s_ha.plugins.module_utils.scheduling import (
    field,
    node_blockers,
    requirement_matches,
)

_SUFFIX = {"": 1, "m": 0.001, "k": 10 ** 3, "M": 10 ** 6, "G": 10 ** 9, "T": 10 ** 12, "P": 10 ** 15,
           "E": 10 ** 18, "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50,
           "Ei": 2 ** 60}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")


def quantity(value):
    """A Kubernetes quantity ("250m", "64Mi", "1.5", 2) as a float; ValueError if malformed."""
    m = _QUANTITY.match(("%s" % value).strip())
    if not m or m.group(2) not in _SUFFIX:
        raise ValueError("%r is not a Kubernetes quantity" % (value,))
    return float(m.group(1)) * _SUFFIX[m.group(2)]


def pod_requests(spec):
    """{"cpu", "memory"} a pod requests: the sum over its containers, or the largest init
    container's request when that is larger (as the scheduler counts it)."""
    out = {}
    for resource in ("cpu", "memory"):
        total = sum(quantity(((c.get("resources") or {}).get("requests") or {}).get(resource, 0))
                    for c in spec.get("containers") or [])
        init = [quantity(((c.get("resources") or {}).get("requests") or {}).get(resource, 0))
                for c in spec.get("initContainers") or []]
        out[resource] = max([total] + init)
    return out


def ready_since(node):
    """When the node's Ready condition last turned True (an aware datetime), None if not Ready."""
    for c in field(node, "status", "conditions") or []:
        if c.get("type") == "Ready":
            if c.get("status") != "True":
                return None
            stamp = c.get("lastTransitionTime")
            if not stamp:
                return None
            return datetime.datetime.strptime(stamp.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S%z")
    return None


def room_blockers(spec, node, pods_on_node):
    """Why the node has no room for a pod with ``spec`` ([] when it has): its allocatable
    cpu, memory and pod count minus what the live pods on it already request."""
    allocatable = field(node, "status", "allocatable") or {}
    live = [p for p in pods_on_node if field(p, "status", "phase") not in ("Succeeded", "Failed")]
    want = pod_requests(spec)
    reasons = []
    for resource in ("cpu", "memory"):
        if resource not in allocatable:
            continue
        used = sum(pod_requests(p.get("spec") or {})[resource] for p in live)
        free = quantity(allocatable[resource]) - used
        if want[resource] > free:
            reasons.append("not enough %s: requests %g, free %g of %g" % (
                resource, want[resource], free, quantity(allocatable[resource])))
    if "pods" in allocatable and len(live) + 1 > quantity(allocatable["pods"]):
        reasons.append("no room for another pod: %d of %d" % (len(live), int(quantity(allocatable["pods"]))))
    return reasons


def preferred_weights(spec, nodes):
    """node name -> the sum of the pod's preferred node-affinity weights that node matches."""
    terms = field(spec, "affinity", "nodeAffinity", "preferredDuringSchedulingIgnoredDuringExecution") or []
    out = {}
    for node in nodes:
        labels = field(node, "metadata", "labels") or {}
        out[field(node, "metadata", "name")] = sum(
            int(t.get("weight", 0)) for t in terms
            if all(requirement_matches(r, labels) for r in field(t, "preference", "matchExpressions") or []))
    return out


def failback_blockers(spec, node, pods_on_node, now, window_seconds):
    """Why a pod with ``spec`` must not be evicted towards ``node`` now; [] when it may.

    ``now``: an aware datetime. ``window_seconds``: how long the node must have been Ready."""
    name = field(node, "metadata", "name")
    since = ready_since(node)
    reasons = []
    if since is None:
        reasons.append("%s is not Ready" % name)
    elif (now - since).total_seconds() < window_seconds:
        reasons.append("%s Ready for %ds only, less than the %ds stabilisation window" % (
            name, int((now - since).total_seconds()), window_seconds))
    reasons += ["%s: %s" % (name, r) for r in node_blockers(spec, node)]
    reasons += ["%s: %s" % (name, r) for r in room_blockers(spec, node, pods_on_node)]
    return reasons


def _running(pod):
    return field(pod, "status", "phase") == "Running" and not field(pod, "metadata", "deletionTimestamp")


def failback_plan(apps, nodes, pods, now, window_seconds):
    """One decision per app: which pod (at most one) may be evicted to fail back now.

    ``apps``: [{"namespace", "name", "selector": matchLabels}]; ``nodes``: Node objects;
    ``pods``: every pod (for the apps and for the nodes' room). A pod is away when a node
    matches more of its preferred node affinity weight than the node it runs on (the
    descheduler's rule). It may be evicted only when that better node passes
    ``failback_blockers``. Per app at most one pod, and none while a pod of the app is
    not Running (a failback still settling, a rollout). Returns
    [{"app", "action": "evict" | "hold" | "none", "pod", "from", "to", "reasons"}]."""
    by_node = {}
    for p in pods:
        if field(p, "spec", "nodeName"):
            by_node.setdefault(p["spec"]["nodeName"], []).append(p)
    node_by_name = dict((field(n, "metadata", "name"), n) for n in nodes)
    out = []
    for app in apps:
        ident = "%s/%s" % (app["namespace"], app["name"])
        mine = [p for p in pods if field(p, "metadata", "namespace") == app["namespace"]
                and all((field(p, "metadata", "labels") or {}).get(k) == v for k, v in app["selector"].items())]
        decision = {"app": ident, "action": "none", "pod": None, "from": None, "to": None, "reasons": []}
        out.append(decision)
        unsettled = sorted(field(p, "metadata", "name") for p in mine if not _running(p))
        away = []
        for pod in sorted((p for p in mine if _running(p)), key=lambda p: p["metadata"]["name"]):
            weights = preferred_weights(pod["spec"], nodes)
            here = weights.get(pod["spec"]["nodeName"], 0)
            best = max(weights.values()) if weights else 0
            if best > here:
                away.append((pod, sorted(n for n, w in weights.items() if w == best)))
        if not away:
            decision["reasons"] = ["every Running pod is on its most preferred node"] if mine else ["no pods"]
            continue
        pod, targets = away[0]
        decision.update({"pod": pod["metadata"]["name"], "from": pod["spec"]["nodeName"], "to": targets[0]})
        if unsettled:
            decision.update(action="hold", reasons=["pods of the app not Running yet: %s" % ", ".join(unsettled)])
            continue
        reasons = []
        spec = dict((k, v) for k, v in pod["spec"].items() if k != "nodeName")  # as a replacement pod
        for target in targets:
            node = node_by_name[target]
            blockers = failback_blockers(spec, node, by_node.get(target, []), now, window_seconds)
            if not blockers:
                decision.update(action="evict", to=target, reasons=[])
                break
            reasons += blockers
        else:
            decision.update(action="hold", reasons=reasons)
    return out


def decision_text(d):
    """One line per failback decision."""
    if d["action"] == "evict":
        return "%s: evict %s from %s back to %s" % (d["app"], d["pod"], d["from"], d["to"])
    if d["action"] == "hold":
        return "%s: hold %s on %s (%s)" % (d["app"], d["pod"], d["from"], "; ".join(d["reasons"]))
    return "%s: %s" % (d["app"], "; ".join(d["reasons"]) or "nothing to do")
