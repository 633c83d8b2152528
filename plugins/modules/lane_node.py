#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: lane_node
short_description: Ensure a node's lane labels, lane taints and cordon state
version_added: 0.1.0
author:
  - homelab.k8s_ha maintainers (!UNKNOWN)
description:
  - Sets or removes labels, adds, removes or replaces taints, and cordons or uncordons
    one node, in one write. This is runbook 000's C(kubectl label) and C(kubectl taint)
    with a plan, a diff, and the parameters that undo the change.
  - With O(nodes), one call does the same for several nodes, one write each, in order; it
    returns C(results) shaped as a loop over the module registers them.
  - Input is checked by Kubernetes' syntax rules before anything is sent; an unknown
    node fails before any write.
  - The write is a merge patch carrying the node's C(resourceVersion); if the node
    changed since it was read, the API server refuses it and the module reads the node
    again and retries (up to 5 times).
  - In check mode the patch is sent as a server-side dry run, so nothing is written,
    and the diff shows labels, taints and C(unschedulable) before and after.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - homelab.k8s_ha.request_timeout
options:
  name:
    description: The node. One of O(name) and O(nodes) is required.
    type: str
  nodes:
    description:
      - Several nodes in one call, each with the options O(name), O(labels), O(taints),
        O(taints_state) and O(cordon) of its own (a rollback's C(results[].rollback) can
        be given as they are).
      - Bad input of any node, or a node that does not exist, fails before any write, with
        a message naming it (C(nodes[i])). A failure while writing a node (it kept
        changing, a refusal) stops the call there with a message that starts
        C(nodes[i] (name)), and C(results) still holds the nodes before it, whose writes
        were made.
    type: list
    elements: dict
    suboptions:
      name:
        description: The node.
        type: str
        required: true
      labels:
        description: As O(labels).
        type: dict
      taints:
        description: As O(taints).
        type: list
        elements: dict
        suboptions:
          key:
            description: Taint key.
            type: str
            required: true
          value:
            description: Taint value (may be empty).
            type: str
          effect:
            description: Taint effect.
            type: str
            required: true
            choices: [NoSchedule, PreferNoSchedule, NoExecute]
      taints_state:
        description: As O(taints_state); unset means V(present).
        type: str
        choices: [present, absent, exact]
      cordon:
        description: As O(cordon).
        type: bool
  labels:
    description:
      - Labels to set. A null value removes the label. Labels not named are left alone.
      - Keys and values follow Kubernetes' syntax; values must be strings.
    type: dict
  taints:
    description:
      - Taints to apply as O(taints_state) says. A taint is identified by key and effect.
      - Omit to leave taints alone.
    type: list
    elements: dict
    suboptions:
      key:
        description: Taint key.
        type: str
        required: true
      value:
        description: Taint value (may be empty).
        type: str
      effect:
        description: Taint effect.
        type: str
        required: true
        choices: [NoSchedule, PreferNoSchedule, NoExecute]
  taints_state:
    description:
      - V(present) adds the taints or updates their values.
      - V(absent) removes taints with the same key and effect.
      - V(exact) makes the node's taints exactly O(taints), except taints under
        C(node.kubernetes.io/) and C(node.cloudprovider.kubernetes.io/), which belong to
        Kubernetes' controllers and are kept.
    type: str
    choices: [present, absent, exact]
    default: present
  cordon:
    description:
      - V(true) cordons (C(spec.unschedulable)), V(false) uncordons, unset leaves it.
    type: bool
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Lane label on server-1
  homelab.k8s_ha.lane_node:
    name: miniserver
    labels:
      workload-lane: primary

- name: Lane label and taint on server-2, keep it cordoned
  homelab.k8s_ha.lane_node:
    name: worker-1
    labels:
      workload-lane: secondary
    taints:
      - key: workload-lane
        value: secondary
        effect: NoSchedule
    cordon: true
  register: lane

- name: Undo exactly that change (lane.rollback holds the prior values)
  homelab.k8s_ha.lane_node:
    name: "{{ lane.rollback.name }}"
    labels: "{{ lane.rollback.labels | default(omit) }}"
    taints: "{{ lane.rollback.taints | default(omit) }}"
    taints_state: "{{ lane.rollback.taints_state | default(omit) }}"
    cordon: "{{ lane.rollback.cordon | default(omit) }}"

- name: Plan both nodes in one call (check mode); plan.results is one result per node
  homelab.k8s_ha.lane_node:
    nodes:
      - name: miniserver
        labels: {workload-lane: primary}
      - name: worker-1
        labels: {workload-lane: secondary}
        taints: [{key: workload-lane, value: secondary, effect: NoSchedule}]
  check_mode: true
  register: plan
"""

RETURN = r"""
before:
  description: Labels, taints and unschedulable of the node before the change.
  returned: success
  type: dict
  sample: {"labels": {"kubernetes.io/hostname": "worker-1"}, "unschedulable": true,
           "taints": [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]}
node:
  description:
    - Labels, taints and unschedulable of the node after the change (in check mode, as
      the API server's dry run says it would be).
  returned: success
  type: dict
  sample: {"labels": {"kubernetes.io/hostname": "worker-1", "workload-lane": "secondary"},
           "unschedulable": true,
           "taints": [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
                      {"key": "workload-lane", "value": "secondary", "effect": "NoSchedule"}]}
rollback:
  description:
    - Parameters for this module that return every touched field to its prior value
      (labels it added are removed, taints restored exactly, cordon state restored).
  returned: success
  type: dict
  sample: {"name": "worker-1", "labels": {"workload-lane": null},
           "taints": [], "taints_state": "exact"}
results:
  description:
    - With O(nodes), one result per node in order, as a loop over the module registers
      them; each has RV(before), RV(node), RV(rollback), C(changed), C(item) (that node's
      options) and, in diff mode, C(diff). The top-level RV(before), RV(node) and
      RV(rollback) are then not returned.
  returned: when O(nodes) is given
  type: list
  elements: dict
  sample: [{"item": {"name": "miniserver", "labels": {"workload-lane": "primary"}},
            "changed": true, "before": {"labels": {}, "taints": [], "unschedulable": false},
            "node": {"labels": {"workload-lane": "primary"}, "taints": [], "unschedulable": false},
            "rollback": {"name": "miniserver", "labels": {"workload-lane": null}}}]
"""

from ansible_collections.homelab.k8s_ha.plugins.module_utils.kube import (
    K8sHaModule,
    argument_spec,
)
from ansible_collections.homelab.k8s_ha.plugins.module_utils.lane import (
    TAINT_OPTIONS,
    TAINTS_STATES,
)
from ansible_collections.homelab.k8s_ha.plugins.module_utils.lane_node import run_lane_node


def _node_options(name_required, taints_state_default="present"):
    return dict(
        name=dict(type="str", required=name_required),
        labels=dict(type="dict"),
        taints=dict(type="list", elements="dict", options=TAINT_OPTIONS),
        taints_state=dict(type="str", default=taints_state_default, choices=list(TAINTS_STATES)),
        cordon=dict(type="bool"),
    )


def main():
    run_lane_node(K8sHaModule(
        argument_spec(nodes=dict(type="list", elements="dict", options=_node_options(True, None)),
                      **_node_options(False)),
        required_one_of=[("name", "nodes")],
        mutually_exclusive=[("name", "nodes"), ("labels", "nodes"), ("taints", "nodes"),
                            ("taints_state", "nodes"), ("cordon", "nodes")]))


if __name__ == "__main__":
    main()
