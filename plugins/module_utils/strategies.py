# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runbook 002, strategies B and C, pure: B's dual Deployments made from an app's
Deployment and the handover each stage performs; C's pinned primary with a sidecar."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible_collections.homelab.k8s_ha.plugins.module_utils.spread import (
    lane_pins,
    lane_toleration,
    unpinned_selector,
)

# Server-set metadata that a new object must not carry.
_SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields",
                  "selfLink", "deletionTimestamp", "ownerReferences")
_SERVER_ANNOTATIONS = ("deployment.kubernetes.io/revision", "kubectl.kubernetes.io/last-applied-configuration")
SIDES = ("primary", "standby")


def side_name(workload, side):
    return "%s-%s" % (workload, side)


def dual_deployments(deployment, lane, role_label="role"):
    """``[<app>-primary, <app>-standby]`` as new Deployments made from ``deployment``.

    Both start with replicas 0 (the primary gets its writer through a handover), the
    rollout strategy Recreate (a surge pod would be a second writer), the pod label
    ``role_label: primary|standby`` added to the selector and the template, and a
    required node affinity to one lane: the primary lane for ``-primary``, the secondary
    lane with its toleration for ``-standby``. A nodeSelector pin to a lane or a host is
    dropped, since it would AND with the affinity; a nodeName pin is refused."""
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    name = deployment["metadata"]["name"]
    if pod.get("nodeName"):
        raise ValueError("%s is pinned with nodeName %s; remove the pin first" % (name, pod["nodeName"]))
    labels = (spec.get("selector") or {}).get("matchLabels") or {}
    if not labels or (spec.get("selector") or {}).get("matchExpressions"):
        raise ValueError("%s: the selector must be matchLabels only, to add %s to it" % (name, role_label))
    if role_label in labels:
        raise ValueError("%s: its selector already has %s; it looks like one side of a pair already" % (name, role_label))
    primary_lane, secondary_lane = lane["values"][0], lane["values"][1]
    out = []
    for side, lanes in (("primary", [primary_lane]), ("standby", [secondary_lane])):
        meta = copy.deepcopy(deployment["metadata"])
        for key in _SERVER_FIELDS:
            meta.pop(key, None)
        annotations = dict((k, v) for k, v in (meta.get("annotations") or {}).items() if k not in _SERVER_ANNOTATIONS)
        meta["annotations"] = dict(annotations, **{"homelab.k8s-ha/made-from": name})
        meta["name"] = side_name(name, side)
        meta["labels"] = dict(meta.get("labels") or {}, **{role_label: side})
        new_spec = copy.deepcopy(spec)
        new_spec["replicas"] = 0
        new_spec["selector"] = {"matchLabels": dict(labels, **{role_label: side})}
        new_spec["strategy"] = {"type": "Recreate"}
        template = new_spec["template"]
        template.setdefault("metadata", {})
        template["metadata"]["labels"] = dict(template["metadata"].get("labels") or {}, **{role_label: side})
        pod_spec = template["spec"]
        pins = lane_pins(pod_spec, lane)
        selector = dict((k, v) for k, v in (pod_spec.get("nodeSelector") or {}).items() if k not in pins)
        if selector:
            pod_spec["nodeSelector"] = selector
        else:
            pod_spec.pop("nodeSelector", None)
        affinity = pod_spec.setdefault("affinity", {})
        affinity["nodeAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": lane["label"], "operator": "In", "values": lanes}]}]}}
        tolerations = [t for t in pod_spec.get("tolerations") or [] if t != lane_toleration(lane)]
        if side == "standby":
            tolerations.append(lane_toleration(lane))
        if tolerations:
            pod_spec["tolerations"] = tolerations
        else:
            pod_spec.pop("tolerations", None)
        out.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": new_spec})
    return out


def stage_handover(workload, stage, replicas=1):
    """The handover a strategy B stage performs: ``{"giver", "name", "replicas"}``.

    Stage 1 moves the writer from the app's Deployment to ``<app>-primary``; failover
    from ``-primary`` to ``-standby``; failback back again."""
    primary, standby = side_name(workload, "primary"), side_name(workload, "standby")
    moves = {"1": (workload, primary), "failover": (primary, standby), "failback": (standby, primary)}
    if stage not in moves:
        raise ValueError("stage: %r; allowed for controlled_failover: %s" % (stage, ", ".join(sorted(moves))))
    giver, taker = moves[stage]
    return {"giver": giver, "name": taker, "replicas": int(replicas)}


def hybrid_fields(deployment, lane, sidecar):
    """Strategy C (hybrid): workload_fields arguments that keep the app pinned to the
    primary lane (required node affinity, lane pins in nodeSelector dropped) and add the
    user's replication sidecar or queue container.

    ``sidecar`` is a container spec with at least ``name`` and ``image``. A container of
    that name is replaced (a rerun with the same spec changes nothing); the app's first
    container may not be replaced. The whole container list is written, so its prior
    value restores exactly."""
    name = deployment["metadata"]["name"]
    pod = deployment["spec"]["template"]["spec"]
    if not isinstance(sidecar, dict) or not sidecar.get("name") or not sidecar.get("image"):
        raise ValueError("sidecar: a container spec with name and image is required, got %r" % (sidecar,))
    lacking = [k for k in ("readinessProbe", "livenessProbe") if not sidecar.get(k)] + [
        "requests." + r for r in ("cpu", "memory") if r not in ((sidecar.get("resources") or {}).get("requests") or {})]
    if lacking:
        raise ValueError("sidecar %s: no %s; the safety gates (3.1) ask every container of the app for probes "
                         "and requests, so the next run would refuse the app" % (sidecar["name"], ", ".join(lacking)))
    containers = pod.get("containers") or []
    if containers and containers[0].get("name") == sidecar["name"]:
        raise ValueError("sidecar: name %s is the app's own container in %s; choose another name"
                         % (sidecar["name"], name))
    if pod.get("nodeName"):
        raise ValueError("%s is pinned with nodeName %s; remove the pin first" % (name, pod["nodeName"]))
    wanted = [c for c in containers if c.get("name") != sidecar["name"]] + [copy.deepcopy(sidecar)]
    fields = {
        "spec.template.spec.containers": wanted,
        # the whole affinity (its other parts kept), so the prior value, absent included,
        # restores exactly
        "spec.template.spec.affinity": dict(copy.deepcopy(pod.get("affinity") or {}), nodeAffinity={
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": lane["label"], "operator": "In", "values": [lane["values"][0]]}]}]}}),
    }
    unpinned = unpinned_selector(pod, lane)
    if unpinned is not None:
        fields["spec.template.spec.nodeSelector"] = unpinned
    return fields


def sidecar_check(pods, name):
    """A verification check: every live pod of the app runs container ``name``, Ready."""
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    missing = []
    for p in live:
        statuses = dict((c["name"], c) for c in p.get("status", {}).get("containerStatuses") or [])
        if not statuses.get(name, {}).get("ready"):
            missing.append(p["metadata"]["name"])
    return {"name": "sidecar %s runs, Ready, in every pod" % name, "passed": bool(live) and not missing,
            "detail": ("not in: " + ", ".join(sorted(missing))) if missing else
                      ("%d pod(s)" % len(live) if live else "no pod runs")}
