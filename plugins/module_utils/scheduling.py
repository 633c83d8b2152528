# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kube-scheduler's node filters, as pure functions over API objects.

Answers "may this pod template run on this node?" the way the scheduler's filter
plugins NodeName, NodeUnschedulable, NodeAffinity (nodeSelector and required node
affinity) and TaintToleration do, with the reason when it may not. Preferred
affinity and PreferNoSchedule only score; they never filter, so they are ignored
here. Resources (NodeResourcesFit) are out of scope. No I/O.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"


def field(obj, *keys):
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


def taint_text(taint):
    """key=value:Effect, as kubectl prints a taint."""
    key = taint.get("key", "") + ("=" + taint["value"] if taint.get("value") else "")
    return "%s:%s" % (key, taint.get("effect"))


FILTER_EFFECTS = ("NoSchedule", "NoExecute")

# Tolerations the DaemonSet controller adds to every DaemonSet pod
# (pkg/controller/daemon/util.AddOrUpdateDaemonPodTolerations).
DAEMONSET_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": UNSCHEDULABLE_TAINT, "operator": "Exists", "effect": "NoSchedule"},
]


def toleration_tolerates(toleration, taint):
    """v1.Toleration.ToleratesTaint: effect, key and operator/value must all match."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    operator = toleration.get("operator") or "Equal"
    if not key:
        # an empty key matches every key, and is only valid with Exists
        return operator == "Exists"
    if key != taint.get("key"):
        return False
    if operator == "Exists":
        return True
    if operator == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def untolerated_taints(tolerations, taints, effects=FILTER_EFFECTS):
    return [t for t in taints if t.get("effect") in effects
            and not any(toleration_tolerates(tol, t) for tol in tolerations)]


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def requirement_matches(req, labels):
    """One NodeSelectorRequirement against a label map (or {'metadata.name': name})."""
    key = req.get("key")
    op = req.get("operator")
    values = req.get("values") or []
    present = key in labels
    value = labels.get(key)
    if op == "In":
        return present and value in values
    if op == "NotIn":
        return not present or value not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt"):
        if not present or len(values) != 1:
            return False
        have, want = _int_or_none(value), _int_or_none(values[0])
        if have is None or want is None:
            return False
        return have > want if op == "Gt" else have < want
    return False  # an unknown operator matches nothing


def term_matches(term, node_labels, node_name):
    """A NodeSelectorTerm: all expressions and fields; an empty term matches nothing."""
    exprs = field(term, "matchExpressions") or []
    fields = field(term, "matchFields") or []
    if not exprs and not fields:
        return False
    return (all(requirement_matches(r, node_labels) for r in exprs)
            and all(requirement_matches(r, {"metadata.name": node_name}) for r in fields))


def required_affinity_terms(spec):
    required = field(spec, "affinity", "nodeAffinity",
                     "requiredDuringSchedulingIgnoredDuringExecution")
    if required is None:
        return None
    return field(required, "nodeSelectorTerms") or []


def pinning_blockers(spec, node):
    """Why the pod's own placement fields keep it off ``node``: [] means they do not.

    The filters NodeName (a bound pod stays on its node) and NodeAffinity (nodeSelector
    and required node affinity), judged on ``node``'s name and labels alone. The node's
    cordon and taints are left out: they are the node's guard, not the workload's. This is
    what "guarded" means in the placement audit: judged by effect, not by which field
    the workload happens to set (a nodeSelector every node matches guards nothing)."""
    name = field(node, "metadata", "name")
    labels = field(node, "metadata", "labels") or {}
    node_name = field(spec, "nodeName")
    if node_name:
        return ["nodeName is %s" % node_name] if node_name != name else []
    reasons = []
    selector = field(spec, "nodeSelector") or {}
    missing = sorted(k for k, v in selector.items() if labels.get(k) != v)
    if missing:
        reasons.append("nodeSelector %s does not match"
                       % ",".join("%s=%s" % (k, selector[k]) for k in missing))
    terms = required_affinity_terms(spec)
    if terms is not None and not any(term_matches(t, labels, name) for t in terms):
        reasons.append("required node affinity does not match")
    return reasons


def node_blockers(spec, node, extra_tolerations=()):
    """Why the scheduler would not put a pod with ``spec`` on ``node``: [] means it may.

    ``node`` is a Node object (dict). ``extra_tolerations`` are added to the spec's own
    (the DaemonSet controller's, for DaemonSet templates)."""
    name = field(node, "metadata", "name")
    taints = field(node, "spec", "taints") or []
    tolerations = list(field(spec, "tolerations") or []) + list(extra_tolerations)
    reasons = []

    node_name = field(spec, "nodeName")
    if node_name:
        # bound directly, the scheduler is bypassed; only NoExecute taints still apply
        if node_name != name:
            return ["nodeName is %s" % node_name]
        return ["untolerated taint %s" % taint_text(t)
                for t in untolerated_taints(tolerations, taints, ("NoExecute",))]

    if field(node, "spec", "unschedulable"):
        unsched = {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}
        if not any(toleration_tolerates(tol, unsched) for tol in tolerations):
            reasons.append("node is unschedulable (cordoned)")

    reasons += pinning_blockers(spec, node)

    for t in untolerated_taints(tolerations, taints):
        if t.get("key") == UNSCHEDULABLE_TAINT and field(node, "spec", "unschedulable"):
            continue  # already reported as cordoned
        reasons.append("untolerated taint %s" % taint_text(t))
    return reasons


def as_schedulable(node):
    """``node`` as it would be once uncordoned: unschedulable false, no cordon taint."""
    out = dict(node)
    spec = dict(field(node, "spec") or {})
    spec.pop("unschedulable", None)
    spec["taints"] = [t for t in (spec.get("taints") or []) if t.get("key") != UNSCHEDULABLE_TAINT]
    out["spec"] = spec
    return out


def placement(spec, nodes, kind=None, if_schedulable=()):
    """Where a pod template may run now and where it could if ``if_schedulable`` were uncordoned.

    Returns {'may_run_on': [...], 'would_run_on': [...], 'blocked': {node: [reasons]}}."""
    extra = DAEMONSET_TOLERATIONS if kind == "DaemonSet" else ()
    now, later, blocked = [], [], {}
    for node in nodes:
        name = field(node, "metadata", "name")
        reasons = node_blockers(spec, node, extra)
        if reasons:
            blocked[name] = reasons
        else:
            now.append(name)
        if name in if_schedulable:
            if not node_blockers(spec, as_schedulable(node), extra):
                later.append(name)
        elif not reasons:
            later.append(name)
    return {"may_run_on": sorted(now), "would_run_on": sorted(later), "blocked": blocked}
