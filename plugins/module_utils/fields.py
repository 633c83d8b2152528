# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Named fields of a Kubernetes object: read, set, compare, and undo. Pure functions.

A field path is dot-separated keys, where a list of named items is addressed by the
item's name in brackets: ``spec.template.spec.containers[coredns].resources``.
Setting a field to None removes it. Wanted values are compared as a subset of what is
stored (keys the API server fills in with defaults, such as a probe's
``timeoutSeconds``, do not count as a difference), so a second run changes nothing.
The prior value of every field changed is returned, and setting those values again
(None for a field that was absent) with ``compare="exact"`` restores the object exactly:
a recorded ``{}`` is a value, not "anything".
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import re

from ansible_collections.homelab.k8s_ha.plugins.module_utils.diff import DifferenceTracker

_TOKEN = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*)(?:\[([A-Za-z0-9._-]+)\])?$")


def parse_path(path):
    """``a.b[name].c`` -> [("a", None), ("b", "name"), ("c", None)]; ValueError if malformed."""
    if not isinstance(path, str) or not path:
        raise ValueError("%r is not a field path" % (path,))
    out = []
    for part in path.split("."):
        m = _TOKEN.match(part)
        if not m:
            raise ValueError("%s: %r is not KEY or KEY[NAME]" % (path, part))
        out.append((m.group(1), m.group(2)))
    if out[0][0] != "spec":
        raise ValueError("%s: only fields under spec can be set" % path)
    return out


def _named(items, name, path):
    if not isinstance(items, list):
        raise ValueError("%s: not a list of named items" % path)
    for item in items:
        if isinstance(item, dict) and item.get("name") == name:
            return item
    raise ValueError("%s: no item named %s; names: %s" % (
        path, name, ", ".join(sorted("%s" % i.get("name") for i in items if isinstance(i, dict))) or "none"))


def get_field(obj, path):
    """The value at ``path``, or None when it is absent."""
    node = obj
    for key, name in parse_path(path):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
        if name is not None:
            try:
                node = _named(node, name, path)
            except ValueError:
                return None
    return copy.deepcopy(node)


def set_field(obj, path, value):
    """A copy of ``obj`` with ``path`` set to ``value`` (None removes it).

    Missing dicts on the way are created; a named list item must exist."""
    new = copy.deepcopy(obj)
    tokens = parse_path(path)
    node = new
    for i, (key, name) in enumerate(tokens):
        last = i == len(tokens) - 1
        if last and name is None:
            if value is None:
                node.pop(key, None)
            else:
                node[key] = copy.deepcopy(value)
            return new
        if key not in node or node[key] is None:
            if name is not None:
                raise ValueError("%s: %s has no items" % (path, key))
            node[key] = {}
        node = node[key]
        if name is not None:
            item = _named(node, name, path)
            if last:
                if value is None:
                    raise ValueError("%s: a named item cannot be removed" % path)
                item.clear()
                item.update(copy.deepcopy(value))
                item["name"] = name
                return new
            node = item
        if not isinstance(node, dict):
            raise ValueError("%s: %s is not an object" % (path, key))
    return new


def covers(stored, wanted):
    """True when ``stored`` holds everything ``wanted`` says (defaults may add more)."""
    if isinstance(wanted, dict):
        return isinstance(stored, dict) and all(
            covers(stored.get(k), v) for k, v in wanted.items() if v is not None) and all(
            k not in stored for k, v in wanted.items() if v is None)
    if isinstance(wanted, list):
        return (isinstance(stored, list) and len(stored) == len(wanted)
                and all(covers(s, w) for s, w in zip(stored, wanted)))
    if wanted is None:
        return stored is None
    return stored == wanted


def validate(fields, obj=None):
    """Errors in ``fields`` (path -> value), each naming the path."""
    errors = []
    if not isinstance(fields, dict) or not fields:
        return ["fields: a mapping of field path to value is required"]
    for path in sorted(fields):
        try:
            parse_path(path)
            if obj is not None:
                set_field(obj, path, fields[path])
        except ValueError as e:
            errors.append("fields: %s" % e)
    return errors


COMPARE = ("subset", "exact")


def same(stored, wanted, compare="subset"):
    """Whether ``stored`` already is ``wanted``: as a subset (``covers``, for a desired state,
    where the API server's defaults add keys), or ``exact`` (for a recorded prior value,
    which already holds those defaults: an empty map restores an empty map)."""
    if compare == "exact":
        return stored == wanted
    return covers(stored, wanted)


def fields_change(obj, fields, compare="subset"):
    """(new object, tracker, rollback) for setting ``fields`` on ``obj``.

    ``rollback`` maps every changed path to its value before (None: it was absent).
    ``compare`` is how a field counts as already set (``same``)."""
    tracker = DifferenceTracker()
    rollback = {}
    new = obj
    for path in sorted(fields):
        wanted = fields[path]
        before = get_field(obj, path)
        if same(before, wanted, compare):
            continue
        new = set_field(new, path, wanted)
        tracker.add(path, before, wanted)
        rollback[path] = before
    return new, tracker, rollback


def rollout_state(deployment):
    """("done" | "waiting", text) for a Deployment's rollout of its current generation."""
    spec, status = deployment.get("spec", {}), deployment.get("status", {})
    want = spec.get("replicas", 1)
    name = deployment.get("metadata", {}).get("name", "?")
    observed = status.get("observedGeneration", 0) >= deployment.get("metadata", {}).get("generation", 0)
    updated = status.get("updatedReplicas", 0)
    available = status.get("availableReplicas", 0)
    total = status.get("replicas", 0)
    text = "%s: %d/%d updated, %d available, %d total" % (name, updated, want, available, total)
    if observed and updated == want and available == want and total == want:
        return "done", text
    return "waiting", text


def fields_patch(kind, api_version, name, fields):
    """``fields`` (path -> value) as a strategic-merge patch a Kustomize overlay applies.

    A removed field (None) is ``null``, which the merge deletes; a named list item
    (``containers[web]``) becomes a list entry with that ``name``, the merge key of
    containers. Paths are validated as in ``set_field``."""
    patch = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}}
    for path in sorted(fields):
        node = patch
        tokens = parse_path(path)
        for i, (key, item_name) in enumerate(tokens):
            last = i == len(tokens) - 1
            if item_name is None:
                if last:
                    node[key] = copy.deepcopy(fields[path])
                    break
                node = node.setdefault(key, {})
                continue
            items = node.setdefault(key, [])
            entry = next((x for x in items if x.get("name") == item_name), None)
            if entry is None:
                entry = {"name": item_name}
                items.append(entry)
            if last:
                entry.update(copy.deepcopy(fields[path]) or {})
                entry["name"] = item_name
                break
            node = entry
    return patch


# kube-scheduler 1.34 moves a pod that no event requeued back to its active queue only
# after this long (podMaxInUnschedulablePodsDuration, 5 minutes by default).
FLUSH_SECONDS = 300
# how long a rollout wait leaves the scheduler its own retries before it looks for such pods
STRANDED_SETTLE = 10


def stranded_pods(deployment, replicasets, pods, waited, settle=STRANDED_SETTLE):
    """The pods of the Deployment's current ReplicaSet that kube-scheduler would leave
    Pending for up to FLUSH_SECONDS although what blocked them is gone, by name.

    kube-scheduler 1.34 retries a pod that InterPodAffinity rejected when an assigned pod
    is deleted only if the deleted pod matches the rejected pod's *own* anti-affinity
    (InterPodAffinity.isSchedulableAfterPodChange); an existing pod's required
    anti-affinity against it is not looked at. A rollout away from required anti-affinity
    (runbook 002's stage 2 rollback) creates new pods beside old ones that still carry it:
    the new pod is rejected, the old pod goes, and nothing retries the new one.

    Such a pod is: of the current ReplicaSet (the Deployment's revision), not assigned,
    not being deleted, with PodScheduled False, reason Unschedulable and a message naming
    pod anti-affinity, while no pod of an older ReplicaSet of the Deployment is left
    (Terminating ones included). ``waited``: seconds the rollout wait has run; nothing is
    returned before ``settle`` seconds, so the scheduler's own retries go first."""
    if waited < settle:
        return []
    uid = deployment.get("metadata", {}).get("uid")
    revision = deployment.get("metadata", {}).get("annotations", {}).get("deployment.kubernetes.io/revision")
    owned = [rs for rs in replicasets
             if any(o.get("uid") == uid for o in rs.get("metadata", {}).get("ownerReferences") or [])]
    current = set(rs["metadata"]["uid"] for rs in owned
                  if rs["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision") == revision)
    older = set(rs["metadata"]["uid"] for rs in owned) - current
    if not current:
        return []

    def owner(pod):
        return set(o.get("uid") for o in pod.get("metadata", {}).get("ownerReferences") or [])

    if any(owner(p) & older for p in pods):
        return []
    out = []
    for pod in sorted(pods, key=lambda p: p["metadata"].get("name", "")):
        if not owner(pod) & current or pod.get("spec", {}).get("nodeName") or pod["metadata"].get("deletionTimestamp"):
            continue
        if any(c.get("type") == "PodScheduled" and c.get("status") == "False" and c.get("reason") == "Unschedulable"
               and "anti-affinity" in (c.get("message") or "") for c in pod.get("status", {}).get("conditions") or []):
            out.append(pod)
    return out
