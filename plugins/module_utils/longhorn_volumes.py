# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Longhorn volume replica counts, as pure functions over the objects Longhorn shows.

Runbook 001 section 2.4: exactly N replicas per volume on N distinct nodes, changed one
volume at a time, never while any rebuild is in flight, and stopped at once when a
rebuild fails or repeats (a rebuild storm). The functions here decide; the adapter
(longhorn_volume_replicas.py) reads, patches and waits.

Shapes read (longhorn.io/v1beta2): Volume ``spec.numberOfReplicas``, ``status.state``,
``status.robustness``, ``status.kubernetesStatus``; Replica ``spec.volumeName``,
``spec.nodeID``, ``spec.failedAt``; Engine ``spec.volumeName``,
``status.replicaModeMap`` (``RW``, ``WO`` = rebuilding, ``ERR``),
``status.rebuildStatus[*].isRebuilding``; Node ``spec.allowScheduling`` and the
``Ready`` / ``Schedulable`` conditions.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

from ansible_collections.homelab.k8s_ha.plugins.module_utils.diff import DifferenceTracker

MIN_REPLICAS, MAX_REPLICAS = 1, 20


def replica_count(raw):
    """A replica count as an int, or None when ``raw`` is not a whole number: an int, or a
    string of digits (what a template renders). A bool is not one (``true`` would read as
    1), nor a float."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and re.match(r"^\s*[+-]?\d+\s*$", raw):
        return int(raw)
    return None


def validate(replicas, pvcs, concurrency, wait_timeout, poll_interval, replicas_by_volume=None):
    """Errors in the module's arguments, each naming the field and what is allowed."""
    errors = []
    counts = [("replicas", replicas)] if replicas is not None else []
    counts += [("replicas_by_volume.%s" % k, v) for k, v in sorted((replicas_by_volume or {}).items())]
    for field, raw in counts:
        n = replica_count(raw)
        if n is None:
            errors.append("%s: %s is not an integer; allowed: %d to %d"
                          % (field, json.dumps(raw), MIN_REPLICAS, MAX_REPLICAS))
        elif not MIN_REPLICAS <= n <= MAX_REPLICAS:
            errors.append("%s: %s is out of range; allowed: %d to %d"
                          % (field, raw, MIN_REPLICAS, MAX_REPLICAS))
    for pvc in pvcs:
        parts = pvc.split("/")
        if len(parts) != 2 or not all(parts):
            errors.append("pvcs: %r is not NAMESPACE/NAME" % (pvc,))
    if concurrency < 1:
        errors.append("concurrency: %s; allowed: 1 or more volumes at a time" % concurrency)
    if wait_timeout < 1:
        errors.append("wait_timeout: %s; allowed: 1 or more seconds" % wait_timeout)
    if poll_interval <= 0:
        errors.append("poll_interval: %s; allowed: more than 0 seconds" % poll_interval)
    return errors


def _failed(replica):
    return bool(replica.get("spec", {}).get("failedAt"))


def _condition(obj, kind):
    for c in obj.get("status", {}).get("conditions") or []:
        if c.get("type") == kind:
            return c
    return None


def engine_value(value):
    """The v1 data engine's value of a setting stored plain or as per-engine JSON."""
    value = "%s" % (value,)
    if value.strip().startswith("{"):
        try:
            return "%s" % (json.loads(value).get("v1", ""),)
        except ValueError:
            return value
    return value


def volume_view(volume, replicas, engine):
    """What matters of one volume: counts, health, and its replicas with node and mode."""
    name = volume["metadata"]["name"]
    status = volume.get("status") or {}
    k8s = status.get("kubernetesStatus") or {}
    modes = ((engine or {}).get("status") or {}).get("replicaModeMap") or {}
    mine = sorted((r for r in replicas if r.get("spec", {}).get("volumeName") == name),
                  key=lambda r: r["metadata"]["name"])
    return {
        "name": name,
        "pvc": "%s/%s" % (k8s["namespace"], k8s["pvcName"]) if k8s.get("pvcName") else None,
        "replicas": int(volume.get("spec", {}).get("numberOfReplicas") or 0),
        "state": status.get("state", ""),
        "node": status.get("currentNodeID") or "",
        "robustness": status.get("robustness", ""),
        "replica_list": [{"name": r["metadata"]["name"], "node": r["spec"].get("nodeID") or "",
                          "mode": modes.get(r["metadata"]["name"], ""), "failed": _failed(r),
                          "retries": int(r["spec"].get("rebuildRetryCount") or 0)}
                         for r in mine],
        "rebuilding": rebuilding(engine),
    }


def rebuilding(engine):
    """What the engine is rebuilding now: the replicas in mode ``WO`` by name; else the
    addresses ``rebuildStatus`` shows rebuilding (its keys are replica addresses)."""
    status = (engine or {}).get("status") or {}
    names = sorted(k for k, v in (status.get("replicaModeMap") or {}).items() if v == "WO")
    return names or sorted(k for k, v in (status.get("rebuildStatus") or {}).items()
                           if (v or {}).get("isRebuilding"))


def views(volumes, replicas, engines):
    by_volume = dict((e.get("spec", {}).get("volumeName"), e) for e in engines)
    return [volume_view(v, replicas, by_volume.get(v["metadata"]["name"]))
            for v in sorted(volumes, key=lambda v: v["metadata"]["name"])]


def select(all_views, names, pvcs):
    """The volumes named (by volume name or NAMESPACE/PVC), or all; plus errors."""
    if not names and not pvcs:
        return list(all_views), []
    by_name = dict((v["name"], v) for v in all_views)
    by_pvc = dict((v["pvc"], v) for v in all_views if v["pvc"])
    chosen, errors = [], []
    for n in names:
        if n in by_name:
            chosen.append(by_name[n])
        else:
            errors.append("names: no volume %s; volumes: %s" % (n, ", ".join(sorted(by_name)) or "none"))
    for p in pvcs:
        if p in by_pvc:
            chosen.append(by_pvc[p])
        else:
            errors.append("pvcs: no volume is bound to %s; claims: %s"
                          % (p, ", ".join(sorted(by_pvc)) or "none"))
    unique, seen = [], set()
    for v in chosen:
        if v["name"] not in seen:
            seen.add(v["name"])
            unique.append(v)
    return sorted(unique, key=lambda v: v["name"]), errors


def node_eligibility(longhorn_nodes, kube_nodes, settings, if_uncordoned=()):
    """Longhorn node name -> None if it can take a new replica, else the reason why not.

    A node takes replicas when Longhorn allows scheduling on it, it is Ready, its
    Schedulable condition is not False, and it is not cordoned while the setting
    ``disable-scheduling-on-cordoned-node`` is true (its default). Nodes in
    ``if_uncordoned`` are judged as if uncordoned (a plan whose earlier step uncordons them)."""
    cordon_blocks = engine_value(settings.get("disable-scheduling-on-cordoned-node", "true")) == "true"
    cordoned = dict((n["metadata"]["name"], bool(n.get("spec", {}).get("unschedulable"))
                     and n["metadata"]["name"] not in if_uncordoned)
                    for n in kube_nodes)
    out = {}
    for node in longhorn_nodes:
        name = node["metadata"]["name"]
        ready = _condition(node, "Ready")
        schedulable = _condition(node, "Schedulable")
        if not node.get("spec", {}).get("allowScheduling", True):
            out[name] = "Longhorn scheduling is disabled on the node (spec.allowScheduling false)"
        elif ready is None or ready.get("status") != "True":
            out[name] = "the node is not Ready (%s)" % ((ready or {}).get("reason") or "no Ready condition")
        elif cordoned.get(name) and cordon_blocks:
            out[name] = "the node is cordoned and disable-scheduling-on-cordoned-node is true"
        elif (schedulable is not None and schedulable.get("status") == "False"
              and not (name in if_uncordoned and schedulable.get("reason") == "KubernetesNodeCordoned")):
            out[name] = "Longhorn marks it unschedulable (%s)" % (schedulable.get("reason") or "no reason")
        else:
            out[name] = None
    return out


def auto_balance(volume_value, setting_value):
    """The replica auto-balance in force for a volume: its own ``spec.replicaAutoBalance``
    unless empty or ``ignored``, else the ``replica-auto-balance`` setting (the volume
    controller's getVolumeReplicaAutoBalance). Anything but ``disabled`` lets
    longhorn-manager remove an extra healthy replica itself, one of its choosing
    (cleanupAutoBalancedReplicas), racing the module's own choice of survivors."""
    value = "%s" % (volume_value or "")
    if value in ("", "ignored"):
        value = engine_value(setting_value or "disabled")
    return value


def survivors(view, want, keep_on=()):
    """(keep, remove) when ``view``'s volume goes down to ``want`` replicas: Longhorn does
    not remove an extra healthy replica by itself (longhorn-manager's volume controller,
    cleanupExtraHealthyReplicas: only for an eviction, data locality or replica
    auto-balance), so the module chooses which ones go.

    Kept first: replicas on the ``keep_on`` nodes, in their order; then the replica on the
    node the volume is attached to (the engine's, local); then running (``RW``) ones; then
    by name. A failed replica is never kept. Each entry is ``{"name", "node"}``."""
    order = list(keep_on)
    healthy = [r for r in view["replica_list"] if not r["failed"]]

    def rank(r):
        return (order.index(r["node"]) if r["node"] in order else len(order),
                r["node"] != view.get("node"), r["mode"] != "RW", r["name"])
    ranked = sorted(healthy, key=rank)
    keep = [{"name": r["name"], "node": r["node"]} for r in ranked[:want]]
    remove = [{"name": r["name"], "node": r["node"]} for r in ranked[want:]]
    return keep, remove


def plan(selected, target, eligibility, keep_on=()):
    """One step per selected volume: from, to, where replicas are and will be, problems.

    ``target`` is the wanted count, or a dict of volume name to wanted count.

    A volume gains replicas only on eligible nodes that hold none of it, so that it ends
    with ``target`` replicas on ``target`` distinct nodes (runbook 001: one per node, no
    exceptions); a volume that cannot is a problem, reported before anything is written."""
    steps = []
    for v in selected:
        want = int(target[v["name"]] if isinstance(target, dict) else target)
        healthy = [r for r in v["replica_list"] if not r["failed"]]
        nodes_now = sorted(r["node"] for r in healthy)
        step = {"volume": v["name"], "pvc": v["pvc"], "from": v["replicas"], "to": want,
                "nodes_now": nodes_now, "add_on": [], "remove_from_one_of": [], "problems": []}
        if v["state"] != "attached":
            step["problems"].append(
                "%s is %s; Longhorn rebuilds replicas only while a volume is attached"
                % (v["name"], v["state"] or "in no known state"))
        elif v["robustness"] != "healthy":
            step["problems"].append("%s is %s, not healthy" % (v["name"], v["robustness"] or "unknown"))
        if len(set(nodes_now)) != len(nodes_now):
            step["problems"].append("%s has more than one replica on a node: %s"
                                    % (v["name"], ", ".join(nodes_now)))
        need = want - len(healthy)
        if need > 0:
            free = sorted(n for n, why in eligibility.items() if why is None and n not in nodes_now)
            if len(free) < need:
                excluded = ["%s (%s)" % (n, why) for n, why in sorted(eligibility.items())
                            if why is not None and n not in nodes_now]
                step["problems"].append(
                    "%s needs %d more replica(s) on node(s) without one, but %s; excluded: %s"
                    % (v["name"], need,
                       "only %s can take one" % ", ".join(free) if free else "no node can take one",
                       "; ".join(excluded) or "none (every node already holds a replica)"))
            step["add_on"] = free if len(free) <= need else []
            step["add_count"] = need
            step["add_candidates"] = free
        elif need < 0:
            step["remove_from_one_of"] = nodes_now
            step["remove_count"] = -need
        if len(healthy) > want or v["replicas"] > want:
            keep, remove = survivors(v, want, keep_on)
            step["keep"], step["remove"] = keep, remove
            if keep_on and not any(k["node"] in keep_on for k in keep):
                step["problems"].append(
                    "%s has no healthy replica on %s (keep_on); going down to %d would keep only %s"
                    % (v["name"], ", ".join(keep_on), want,
                       ", ".join("%s on %s" % (k["name"], k["node"]) for k in keep)))
        step["changes"] = v["replicas"] != want or bool(step.get("remove"))
        steps.append(step)
    return steps


def rebuilds_disabled(steps, settings):
    """The problem, or None, when the plan adds replicas while
    ``concurrent-replica-rebuild-per-node-limit`` is 0: longhorn-manager then creates no
    replica for a volume that has any (replenishReplicas returns at once), so the run would
    wait its whole wait_timeout for nothing."""
    value = engine_value(settings.get("concurrent-replica-rebuild-per-node-limit", "5")).strip()
    adding = [s["volume"] for s in steps if s.get("changes") and s.get("add_count", 0) > 0]
    if value != "0" or not adding:
        return None
    return ("concurrent-replica-rebuild-per-node-limit is 0, so Longhorn rebuilds no replica of a volume that has one"
            " (%s would get none); set it to 1 first (longhorn_settings)" % ", ".join(adding))


def plan_tracker(steps):
    tracker = DifferenceTracker()
    for s in steps:
        if s["changes"] and s["from"] != s["to"]:
            tracker.add(s["volume"], s["from"], s["to"])
        if s.get("remove"):
            tracker.add(s["volume"] + " replicas",
                        ["%s on %s" % (r["name"], r["node"]) for r in s["keep"] + s["remove"]],
                        ["%s on %s" % (r["name"], r["node"]) for r in s["keep"]])
    return tracker


def rebuilds_in_flight(engines):
    """volume -> what it is rebuilding, for every engine with a rebuild in flight."""
    out = {}
    for e in engines:
        now = rebuilding(e)
        if now:
            out[e.get("spec", {}).get("volumeName") or e["metadata"]["name"]] = now
    return out


def rebuilds_text(busy):
    """rebuilds_in_flight's result as the problem it is, or None when nothing rebuilds."""
    if not busy:
        return None
    return "a rebuild is in flight: %s" % "; ".join(
        "%s rebuilding %s" % (v, ", ".join(r)) for v, r in sorted(busy.items()))


class Watch(object):
    """Follows one volume after its patch until done, failed, or a repeated rebuild.

    ``observe(view)`` returns ``("done", text)``, ``("waiting", text)`` or
    ``("failed", text)``. The rebuild-storm guard: a replica that fails during the
    wait, or more rebuilds than replicas added, is a failure. So is a failed replica
    that Longhorn reuses in place (``CheckAndReuseFailedReplica``: the same replica, its
    failedAt cleared and ``spec.rebuildRetryCount`` one up, rebuilt again, up to
    ``FailedReplicaMaxRetryCount`` times): its failure may come and go between two reads,
    and its name does not change, so the guard counts its retries, not only names."""

    def __init__(self, before, target):
        self.target = target
        self.known_failed = set(r["name"] for r in before["replica_list"] if r["failed"])
        self.retries = dict((r["name"], r.get("retries", 0)) for r in before["replica_list"])
        self.to_add = max(0, target - len([r for r in before["replica_list"] if not r["failed"]]))
        self.rebuilt = set()

    def observe(self, view):
        name = view["name"]
        if view["state"] != "attached":
            # longhorn-manager rebuilds only while a volume is attached (replenishReplicas) and
            # fails a rebuilding replica when it detaches (closeVolumeDependentResources)
            return "failed", ("%s: the volume is %s, no longer attached; Longhorn rebuilds replicas only while"
                              " a volume is attached and fails a rebuild when it detaches"
                              % (name, view["state"] or "in no known state"))
        self.rebuilt.update(r["name"] for r in view["replica_list"] if r["mode"] == "WO")
        newly_failed = sorted(r["name"] + " on " + (r["node"] or "no node")
                              for r in view["replica_list"]
                              if (r["failed"] or r["mode"] == "ERR") and r["name"] not in self.known_failed)
        retried = sorted("%s on %s (Longhorn retries it in place: rebuildRetryCount %d)" % (
            r["name"], r["node"] or "no node", r.get("retries", 0))
            for r in view["replica_list"] if r.get("retries", 0) > self.retries.get(r["name"], 0))
        if newly_failed or retried:
            return "failed", "%s: a rebuild failed: replica %s" % (name, ", ".join(newly_failed + retried))
        if len(self.rebuilt) > self.to_add:
            text = "%s: rebuild repeated (%d rebuilds for %d new replica(s): %s)" % (
                name, len(self.rebuilt), self.to_add, ", ".join(sorted(self.rebuilt)))
            return "failed", text + "; stopping before a rebuild storm"
        healthy = [r for r in view["replica_list"] if not r["failed"]]
        running = [r for r in healthy if r["mode"] == "RW"]
        nodes = set(r["node"] for r in running)
        text = "%s: %s, %d/%d replicas running on %d node(s)%s" % (
            name, view["robustness"] or "unknown", len(running), self.target, len(nodes),
            ", rebuilding " + ", ".join(view["rebuilding"]) if view["rebuilding"] else "")
        if (view["robustness"] == "healthy" and len(healthy) == self.target
                and len(running) == self.target and len(nodes) == self.target
                and not view["rebuilding"]):
            return "done", text
        return "waiting", text


def plan_lines(steps):
    """The plan as one readable line per volume."""
    lines = []
    for s in steps:
        head = "%s%s: %d -> %d replicas" % (s["volume"], " (%s)" % s["pvc"] if s["pvc"] else "",
                                            s["from"], s["to"])
        if not s["changes"]:
            head += " (no change)"
        where = "now on %s" % (", ".join(s["nodes_now"]) or "no node")
        if s.get("add_count"):
            where += "; adds %d on %s" % (s["add_count"], ", ".join(s["add_on"]) if s["add_on"]
                                          else "one of " + ", ".join(s.get("add_candidates") or ["?"]))
        if s.get("remove"):
            where += "; keeps %s; deletes %s" % (
                ", ".join("%s on %s" % (r["name"], r["node"]) for r in s["keep"]),
                ", ".join("%s on %s" % (r["name"], r["node"]) for r in s["remove"]))
        elif s.get("remove_count"):
            where += "; removes %d" % s["remove_count"]
        lines.append(head + "; " + where + "".join("; PROBLEM: " + p for p in s["problems"]))
    return lines


# -- the role's progress: one module call per batch of volumes ------------------------------
def step_label(step):
    """The line a batch's task prints for one plan step: ``pvc-arr (apps/arr-config): 1 -> 2 replicas``."""
    return "%s%s: %s -> %s replicas" % (step["volume"], " (%s)" % step["pvc"] if step.get("pvc") else "",
                                        step["from"], step["to"])


def batches(steps, concurrency=1):
    """The steps that change, in the plan's order, in batches of ``concurrency`` (the role
    calls longhorn_volume_replicas once per batch, so each volume prints its own line)."""
    size = int(concurrency)
    if size < 1:
        raise ValueError("concurrency: %r; allowed: 1 or more" % (concurrency,))
    changing = [s for s in steps if s.get("changes")]
    return [changing[i:i + size] for i in range(0, len(changing), size)]


def merge_results(results):
    """The per-batch results of longhorn_volume_replicas as one: every prior count
    (``rollback``, a failed batch's patched volumes included), the volumes done in order,
    and the progress events, each tagged with its batch (``t`` counts from its batch's start)."""
    out = {"rollback": {}, "done": [], "events": []}
    for i, r in enumerate(results or []):
        r = r or {}
        out["rollback"].update(r.get("rollback") or {})
        out["done"].extend(r.get("done") or [])
        out["events"].extend(dict(e, batch=i + 1) for e in (r.get("events") or []))
    return out
