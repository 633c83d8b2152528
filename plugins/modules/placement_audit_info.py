#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: placement_audit_info
short_description: Read-only audit of where workloads run and how they are pinned
version_added: 0.1.0
author:
  - homelab.k8s_ha maintainers (!UNKNOWN)
description:
  - Reads every Node, Pod and workload (Deployment, StatefulSet, DaemonSet, ReplicaSet,
    ReplicationController, Job, CronJob, and as kind Pod every pod with no owner or an
    owner that is not one of these) with one LIST request per kind and reports, for each node,
    its readiness, cordon state and taints, the pods it runs and which of those are
    not owned by a DaemonSet, and for each workload how it is pinned to nodes
    (C(nodeName), C(nodeSelector), required node affinity, or none).
  - For every workload it evaluates the pod template against every node the way the
    kube-scheduler's filters do (nodeName, unschedulable, nodeSelector, required node
    affinity with all operators and C(matchFields), taints and tolerations) and reports
    the nodes it may run on now, the nodes it could run on if the nodes in
    O(if_schedulable) were uncordoned, and why each other node is excluded.
    Resources and preferred affinity are not evaluated.
  - A workload is guarded when its own spec (C(nodeName), C(nodeSelector), required node
    affinity) keeps it off O(node), judged by effect with the scheduler's NodeName and
    NodeAffinity filters on that node's name and labels, not by which field it sets. A
    C(nodeSelector) that every node matches guards nothing, and a pod bound to O(node) is
    not kept off it. The node's cordon and taints are left out; they guard the node, not
    the workload. Without O(node), the nodes of O(if_schedulable); without either, guarded
    means kept off some node. A test cross-checks every verdict against the real
    kube-scheduler on a generated matrix of pinning forms and workload kinds.
  - This is the read-only verification of runbook 000 (Phase 0 guardrails) "zero
    non-DaemonSet pods on server-2" and "which apps lack placement guardrails".
  - Never writes to the cluster.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - homelab.k8s_ha.request_timeout
options:
  node:
    description:
      - The node the audit is about (the secondary lane's). Fail when it does not exist,
        put its pods first in C(report), and judge the guards against it (RV(unguarded)).
    type: str
  if_schedulable:
    description:
      - Nodes to evaluate as if they were uncordoned (C(spec.unschedulable) false and no
        C(node.kubernetes.io/unschedulable) taint). Their other taints still apply.
      - Defaults to every node that is cordoned now.
    type: list
    elements: str
  events_since:
    description:
      - Also report the C(FailedScheduling) events at or after this time (RFC 3339, UTC,
        for example C(2026-11-21T18:00:00Z) or C(2026-11-21T18:00:00.250000Z)) in
        RV(failed_scheduling). One more LIST.
      - The offset is C(Z) or C(+00:00) and the fraction is optional. Any other value (another
        offset, a date that does not exist, C(yesterday)) fails before any request, naming this option.
      - An event's time is when it was last observed (its series' last observation, its
        event time, its deprecated timestamps), not when it was written. Within one second
        the fractions decide when both times have one; otherwise the event counts.
    type: str
  daemonset_taints:
    description:
      - Node name to taints (each with C(key), C(effect) and an optional C(value)) whose
        effect on DaemonSets to report in RV(daemonsets) and at the end of RV(report), that
        is the nodes each DaemonSet runs on with these taints on their nodes and without them.
      - The nodes are those of the DaemonSet controller (C(NodeShouldRunDaemonPod)). A
        NoSchedule or NoExecute taint a DaemonSet does not tolerate takes the node out of
        its C(desiredNumberScheduled) at once, and its pod there does not come back after
        a restart (an upgrade, C(kubectl rollout restart)). A cordon does not keep a
        DaemonSet off.
      - Give the taints a change is about to add to see what it would drop, or the taints
        a change added to see what it dropped.
      - Every DaemonSet of the cluster is judged, whatever O(namespaces) says, because node agents
        live in their own namespaces.
    type: dict
  longhorn_namespace:
    description:
      - With O(daemonset_taints), where Longhorn's Setting objects are. When the taints would
        drop a DaemonSet longhorn-manager manages, its Setting C(taint-toleration) is read
        and returned in RV(longhorn_settings), since the setting, not the DaemonSets, is where
        Longhorn takes their tolerations from. One more GET, only then.
    type: str
  namespaces:
    description:
      - Only audit pods and workloads in these namespaces. Nodes are always all read.
      - Empty means all namespaces.
    type: list
    elements: str
    default: []
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Audit placement, focusing on server-2
  homelab.k8s_ha.placement_audit_info:
    node: worker-1
  register: audit

- name: Nothing but the guarded apps could land on server-2 if it were uncordoned
  ansible.builtin.assert:
    that: audit.could_land_on['worker-1'] | length == 0

- name: Server-2 runs nothing but DaemonSets
  ansible.builtin.assert:
    that: audit.non_daemonset_pods['worker-1'] | length == 0
"""

RETURN = r"""
nodes:
  description: Every node with readiness, cordon state, taints and labels.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "worker-1", "ready": true, "unschedulable": true,
            "taints": [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}],
            "labels": {"kubernetes.io/hostname": "worker-1"}}]
pods_by_node:
  description: Node name to the pods bound to it (namespace, name, phase, owner).
  returned: always
  type: dict
  sample: {"worker-1": [{"namespace": "metallb-system", "name": "metallb-speaker-x",
                         "node": "worker-1", "phase": "Running", "owner_kind": "DaemonSet",
                         "owner_name": "metallb-speaker", "daemonset": true}]}
non_daemonset_pods:
  description: Node name to the pods bound to it that no DaemonSet owns.
  returned: always
  type: dict
  sample: {"worker-1": []}
pending_pods:
  description: Namespace and name of every pod not yet bound to a node.
  returned: always
  type: list
  elements: list
  sample: [["apps", "qdrant-5d8f7-abcde"]]
workloads:
  description:
    - Every workload with its pinning form (nodeName, nodeSelector, affinity or none),
      whether its own spec guards it (C(guarded)), and the nodes that spec keeps it off
      with the reasons (C(kept_off)).
  returned: always
  type: list
  elements: dict
  sample: [{"kind": "Deployment", "namespace": "apps", "name": "qdrant", "pinning": "none",
            "node_name": null, "node_selector": {}, "tolerations": [],
            "may_run_on": ["miniserver"], "would_run_on": ["miniserver", "worker-1"],
            "blocked": {"worker-1": ["node is unschedulable (cordoned)"]},
            "guarded": false, "kept_off": {}}]
guard:
  description: The nodes the guards were judged against.
  returned: always
  type: list
  elements: str
  sample: ["worker-1"]
if_schedulable:
  description: The nodes evaluated as if uncordoned.
  returned: always
  type: list
  elements: str
  sample: ["worker-1"]
could_land_on:
  description:
    - For each node in RV(if_schedulable), the workloads (not DaemonSets) that could be
      scheduled there once it is uncordoned and cannot be now.
  returned: always
  type: dict
  sample: {"worker-1": ["apps/qdrant"]}
unguarded:
  description: Workloads other than DaemonSets that nothing in their own spec keeps off the RV(guard) nodes.
  returned: always
  type: list
  elements: dict
  sample: [{"kind": "Deployment", "namespace": "apps", "name": "qdrant", "pinning": "none"}]
failed_scheduling:
  description: FailedScheduling events since O(events_since), oldest first.
  returned: when O(events_since) is set
  type: list
  elements: dict
  sample: [{"namespace": "apps", "pod": "qdrant-5d8f7-abcde", "time": "2026-11-21T18:00:05Z",
            "message": "0/2 nodes are available: 1 node(s) had untolerated taint ..."}]
daemonsets:
  description:
    - Per DaemonSet, the nodes it runs on without and with O(daemonset_taints)
      (C(covers_without), C(covers_with)), the nodes the taints drop (C(dropped)) and why
      (C(why)), its status C(desired) (C(desiredNumberScheduled)), its pod template's
      C(tolerations), the tolerations that would keep the dropped nodes (C(needed)), and
      its C(manager) (its controlling owner as C(Kind/name), or the value of its
      C(longhorn.io/managed-by) label), which undoes a live edit of it.
  returned: when O(daemonset_taints) is set
  type: list
  elements: dict
  sample: [{"namespace": "metallb-system", "name": "metallb-speaker", "desired": 2,
            "covers_without": ["miniserver", "worker-1"], "covers_with": ["miniserver"],
            "dropped": ["worker-1"],
            "why": {"worker-1": ["untolerated taint workload-lane=secondary:NoSchedule"]},
            "tolerations": [],
            "needed": [{"key": "workload-lane", "operator": "Equal", "value": "secondary",
                        "effect": "NoSchedule"}],
            "manager": null}]
longhorn_settings:
  description:
    - Longhorn's Setting C(taint-toleration) as the API server returns it, in a list; empty
      when no Longhorn DaemonSet is dropped, Longhorn is not installed, or it has no such
      setting.
  returned: when O(longhorn_namespace) and O(daemonset_taints) are set
  type: list
  elements: dict
report:
  description: The same facts as lines a person reads.
  returned: always
  type: list
  elements: str
  sample: ["Nodes:", "  worker-1  Ready,SchedulingDisabled  taints: node.kubernetes.io/unschedulable:NoSchedule"]
"""

from ansible_collections.homelab.k8s_ha.plugins.module_utils.kube import (
    K8sHaModule,
    argument_spec,
)
from ansible_collections.homelab.k8s_ha.plugins.module_utils.placement_audit import (
    run_placement_audit,
)


def main():
    module = K8sHaModule(argument_spec(
        node=dict(type="str"),
        if_schedulable=dict(type="list", elements="str"),
        events_since=dict(type="str"),
        namespaces=dict(type="list", elements="str", default=[]),
        daemonset_taints=dict(type="dict"),
        longhorn_namespace=dict(type="str"),
    ))
    module.exit_json(changed=False, **run_placement_audit(module))


if __name__ == "__main__":
    main()
