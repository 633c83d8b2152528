#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: drill_wait
short_description: Wait for one condition of the failover drill, keeping each change of state
version_added: 0.1.0
author:
  - homelab.k8s_ha maintainers (!UNKNOWN)
description:
  - One wait of runbook 003's failover drill, read-only. It reads the node or the
    workloads' pods every O(poll_interval) seconds until O(condition) holds, up to
    O(timeout) seconds.
  - "Conditions: C(node_not_ready) and C(node_ready) (the Node's Ready condition);
    C(evicted) (no workload has a live pod on O(node)); C(running) (every workload has a
    live pod, all on O(node)); C(settled) (every workload runs only on O(node), nothing
    Pending or being deleted)."
  - Instead of one result per read it returns RV(transitions), one entry per change of
    the observed state with its time, and RV(lines) to print them; RV(reached_at) is the
    wall-clock time of the read that met the condition, which the drill's timings use.
  - At the timeout it fails, saying the state and since when it has not changed.
  - It writes nothing, in check mode or not.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - homelab.k8s_ha.request_timeout
options:
  condition:
    description: What to wait for.
    type: str
    choices: [node_not_ready, node_ready, evicted, running, settled]
    required: true
  node:
    description: The node the condition is about.
    type: str
    required: true
  workloads:
    description: The Deployments whose pods are watched (C(namespace), C(name)); required for the pod conditions.
    type: list
    elements: dict
    default: []
  label:
    description: The name each line of RV(lines) starts with; the condition when not given.
    type: str
  timeout:
    description: Seconds to wait before failing.
    type: float
    default: 900
  poll_interval:
    description: Seconds between two reads.
    type: float
    default: 1
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: "Wait: k3s-w1 NotReady"
  homelab.k8s_ha.drill_wait:
    condition: node_not_ready
    node: k3s-w1
    timeout: 900
  register: notready

- name: Show each change of state (one line each, not one per read)
  ansible.builtin.debug:
    msg: "{{ notready.lines }}"

- name: "Wait: sonarr and prowlarr Running on k3s-w2"
  homelab.k8s_ha.drill_wait:
    condition: running
    node: k3s-w2
    workloads:
      - {namespace: media, name: sonarr}
      - {namespace: media, name: prowlarr}
"""

RETURN = r"""
met:
  description: Whether the condition held at the last read.
  returned: always
  type: bool
reached_at:
  description: The wall-clock time (epoch seconds) of the read that met the condition.
  returned: success
  type: float
elapsed:
  description: Seconds from the first read to the last.
  returned: always
  type: float
state:
  description: The state at the last read, as text.
  returned: always
  type: str
  sample: "k3s-w1 Ready=Unknown"
transitions:
  description: One entry per change of state, the first read included, with C(t) (seconds since the first read), C(at) (epoch seconds) and C(state).
  returned: always
  type: list
  elements: dict
lines:
  description: RV(transitions) as lines to print.
  returned: always
  type: list
  elements: str
  sample: ["k3s-w1 NotReady: +0.0 s k3s-w1 Ready=True", "k3s-w1 NotReady: +12.4 s k3s-w1 Ready=Unknown"]
"""

from ansible_collections.homelab.k8s_ha.plugins.module_utils.drill_wait import run_drill_wait
from ansible_collections.homelab.k8s_ha.plugins.module_utils.kube import K8sHaModule, argument_spec


def main():
    run_drill_wait(K8sHaModule(argument_spec(
        condition=dict(type="str", choices=["node_not_ready", "node_ready", "evicted", "running", "settled"],
                       required=True),
        node=dict(type="str", required=True),
        workloads=dict(type="list", elements="dict", default=[]),
        label=dict(type="str"),
        timeout=dict(type="float", default=900),
        poll_interval=dict(type="float", default=1),
    )))


if __name__ == "__main__":
    main()
