# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runbook 001 sections 2.2 and 2.3 as data: the fields that spread a component over
both lanes, one pod per node. Pure; the role feeds it its defaults and the Deployment
as read, and hands the result to workload_fields."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible_collections.homelab.k8s_ha.plugins.module_utils.managers import SUSPENDS

CONTAINER_FIELDS = (("resources", "resources"), ("readiness_probe", "readinessProbe"),
                    ("liveness_probe", "livenessProbe"))


def lane_toleration(lane):
    taint = lane["taint"]
    return {"key": taint["key"], "operator": "Equal", "value": taint["value"], "effect": taint["effect"]}


def lane_pins(pod_spec, lane):
    """The nodeSelector keys that pin a pod to a lane or one host: such a pin would AND
    with a lane affinity."""
    return [k for k in pod_spec.get("nodeSelector") or {} if k in (lane["label"], "kubernetes.io/hostname")]


def unpinned_selector(pod_spec, lane):
    """The pod's nodeSelector with its lane and host pins set to None (removed); None
    when there is no pin."""
    pins = lane_pins(pod_spec, lane)
    return dict(pod_spec["nodeSelector"], **dict((k, None) for k in pins)) if pins else None


def overlay_fields(fields, lane):
    """The stage's fields as the GitOps overlay states them: the same, except that the
    nodeSelector names only the pins it removes (the lane label and the host, null),
    whatever the live object still has. The live fields drop the nodeSelector once the
    pin is gone, so a rerun would write an overlay without the removal, and the base's pin
    would come back on the next sync; a removal of an absent key renders to nothing, so
    this overlay is the same on every run and renders to the live spec."""
    out = dict(fields)
    out["spec.template.spec.nodeSelector"] = {lane["label"]: None, "kubernetes.io/hostname": None}
    return out


def spread_fields(component, deployment, lane, lane_values=None, tolerate=True):
    """Field path -> wanted value for ``component`` (the role's description of it).

    ``component``: ``replicas``, ``anti_affinity`` (required | preferred),
    ``topology_key``, ``max_skew``, and optionally ``container`` with ``resources``,
    ``readiness_probe``, ``liveness_probe``. ``lane``: ``label``, ``values`` (the lanes
    the component may run in) and ``taint`` (the secondary lane's taint, tolerated).
    ``lane_values`` narrows the lanes (runbook 002's stage 1: primary only) and
    ``tolerate`` False leaves the tolerations alone.

    The node affinity pins the component to the lanes instead of one host; the pod
    anti-affinity and the spread constraint put one pod per node. With required
    anti-affinity and as many replicas as nodes, a surge pod could never be placed, so
    the rollout strategy becomes one pod at a time (maxSurge 0, maxUnavailable 1)."""
    if component.get("anti_affinity") not in ("required", "preferred"):
        raise ValueError("anti_affinity of %s: %r; allowed: required, preferred"
                         % (component.get("name"), component.get("anti_affinity")))
    selector = {"matchLabels": copy.deepcopy(deployment["spec"]["selector"]["matchLabels"])}
    key = component.get("topology_key", "kubernetes.io/hostname")
    term = {"labelSelector": selector, "topologyKey": key}
    if component["anti_affinity"] == "required":
        anti = {"requiredDuringSchedulingIgnoredDuringExecution": [term]}
    else:
        anti = {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": term}]}
    pod_spec = deployment["spec"]["template"]["spec"]
    if pod_spec.get("nodeName"):
        raise ValueError("%s is pinned with nodeName %s, which no affinity can widen; remove the pin first"
                         % (component.get("name"), pod_spec["nodeName"]))
    tolerations = copy.deepcopy(pod_spec.get("tolerations") or [])
    if lane_toleration(lane) not in tolerations:
        tolerations.append(lane_toleration(lane))
    values = list(lane_values if lane_values is not None else lane["values"])
    fields = {
        "spec.replicas": int(component.get("replicas", 2)),
        "spec.template.spec.affinity": {
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": lane["label"], "operator": "In",
                                       "values": values}]}]}},
            "podAntiAffinity": anti},
        "spec.template.spec.topologySpreadConstraints": [
            {"maxSkew": int(component.get("max_skew", 1)), "topologyKey": key,
             "whenUnsatisfiable": "DoNotSchedule", "labelSelector": selector}],
    }
    if component["anti_affinity"] == "preferred":
        # A surge rollout (preferred anti-affinity keeps the default strategy): counting the
        # old pods too, as the runbook's constraint does, one new pod goes beside the old
        # pod's node and the other wherever it scores higher; once the old pod goes both
        # can be on one node (seen with CoreDNS: "running on worker-1, worker-1"). With
        # matchLabelKeys the constraint counts the new revision's pods only. Required
        # anti-affinity rolls one pod at a time and places them one per node by itself.
        fields["spec.template.spec.topologySpreadConstraints"][0]["matchLabelKeys"] = ["pod-template-hash"]
    if tolerate:
        fields["spec.template.spec.tolerations"] = tolerations
    unpinned = unpinned_selector(pod_spec, lane)
    if unpinned is not None:  # None removes a key (and compares as "absent")
        fields["spec.template.spec.nodeSelector"] = unpinned
    if component["anti_affinity"] == "required":
        fields["spec.strategy"] = {"type": "RollingUpdate",
                                   "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    container = component.get("container")
    if container:
        names = [c["name"] for c in pod_spec.get("containers", [])]
        if container not in names:
            raise ValueError("container of %s: %s; the Deployment's containers: %s"
                             % (component.get("name"), container, ", ".join(names)))
        for ours, theirs in CONTAINER_FIELDS:
            if component.get(ours):
                fields["spec.template.spec.containers[%s].%s" % (container, theirs)] = copy.deepcopy(
                    component[ours])
    return fields


def rollback_order(rollback):
    """A component's recorded fields as ordered steps, each one rollout:

    1. the pod anti-affinity alone back to its prior value. Required anti-affinity is
       symmetric: while any old pod carries it, no new pod of the app may join that
       pod's node, so a rollout back to co-located pods could wait forever on which old
       pod the ReplicaSet removes first. Relaxing it first, with the lanes still open,
       makes every later rollout placeable;
    2. everything else but the rollout strategy;
    3. the strategy last, so the rollouts above run one pod at a time."""
    affinity = "spec.template.spec.affinity"
    steps = []
    if affinity in rollback:
        steps.append({affinity + ".podAntiAffinity": (rollback[affinity] or {}).get("podAntiAffinity")})
    steps.append(dict((k, v) for k, v in rollback.items() if k != "spec.strategy"))
    steps.append(dict((k, v) for k, v in rollback.items() if k == "spec.strategy"))
    return [step for step in steps if step]


def _owned_by(pod, component):
    return (pod.get("namespace") == component["namespace"] and pod.get("owner_kind") == "ReplicaSet"
            # a Deployment's ReplicaSet is <deployment>-<pod-template-hash>
            and (pod.get("owner_name") or "").rsplit("-", 1)[0] == component["deployment"])


def component_placement(pods_by_node, components, nodes):
    """Per component: the nodes its running pods are on, and whether that is exactly one
    pod on each of ``nodes`` (placement_audit_info's ``pods_by_node`` as input)."""
    out = []
    for c in components:
        on = sorted(node for node, pods in pods_by_node.items() for p in pods
                    if _owned_by(p, c) and p.get("phase") == "Running")
        out.append({"name": c["name"], "namespace": c["namespace"], "deployment": c["deployment"],
                    "nodes": on, "one_per_node": on == sorted(nodes)})
    return out


def placement_checks(placement):
    """component_placement's result as verification checks (name, passed, detail)."""
    return [{"name": "%s: one pod on each node" % c["name"], "passed": c["one_per_node"],
             "detail": "running on " + (", ".join(c["nodes"]) or "no node")} for c in placement]


def expected_placement(pods_by_node, expect, namespace):
    """Verification checks that each Deployment of ``expect`` (``[{"deployment", "nodes"}]``)
    runs exactly one pod on each listed node (an empty list: no running pod at all)."""
    components = [{"name": e["deployment"], "namespace": namespace, "deployment": e["deployment"]} for e in expect]
    checks = []
    for e, placed in zip(expect, component_placement(pods_by_node, components, [])):
        want = sorted(e["nodes"])
        checks.append({"name": "%s runs %s" % (e["deployment"], "on " + ", ".join(want) if want else "no pod"),
                       "passed": placed["nodes"] == want,
                       "detail": "running on " + (", ".join(placed["nodes"]) or "no node")})
    return checks


def stray_pods(pods_by_node, node, components):
    """Pods on ``node`` that no DaemonSet owns and that are not one of ``components``:
    what the "no surprise scheduling" rule forbids."""
    return sorted("%s/%s" % (p["namespace"], p["name"]) for p in pods_by_node.get(node, [])
                  if not p.get("daemonset") and not any(_owned_by(p, c) for c in components))


def fields_rollback(results):
    """From the registered results of a looped workload_fields task: for each object it
    changed, the module arguments that put the fields back (name, namespace, fields)."""
    return [{"name": r["item"]["name"], "namespace": r["item"]["namespace"],
             "kind": r["item"].get("kind", "Deployment"), "api_version": r["item"].get("api_version", "apps/v1"),
             "fields": r["rollback"]}
            for r in results if r.get("changed") and r.get("rollback")]


def managers_last(records):
    """Recorded workload_fields targets with the managers the apply suspended
    (managers.SUSPENDS) after the rest, each part in its order: a rollback resumes a
    manager once what it manages is back."""
    return sorted(records, key=lambda r: r.get("kind") in SUSPENDS)  # a stable sort


def rollback_steps(records):
    """[(record, fields)] for every recorded component, in rollback_order's steps; a
    manager the apply suspended last (managers_last)."""
    return [(r, step) for r in managers_last(records) for step in rollback_order(r.get("fields") or {})]
