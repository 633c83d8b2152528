#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: failback_guard
short_description: Fail pods back to their preferred node only when they can land there
version_added: 0.1.0
author:
  - homelab.k8s_ha maintainers (!UNKNOWN)
description:
  - The guarded failback of runbook 003. A pod is away when a node matches more of its
    preferred node affinity weight than the node it runs on, the rule of the
    descheduler's RemovePodsViolatingNodeAffinity.
  - The descheduler evicts such a pod even when the better node is cordoned, tainted or
    full (descheduler issues 1707, 1410, 1236), so the pod comes back to the same node
    and is evicted again on every pass. This module evicts only when the better node has
    been Ready for at least O(window_seconds), is schedulable, has no taint the pod does
    not tolerate, matches its required placement and has room for its requests.
    Otherwise the app is held, with the reasons.
  - Evictions go through the Eviction API, so PodDisruptionBudgets are respected; a
    refused eviction (HTTP 429) holds the app. At most one pod per app is evicted per
    run, and none while a pod of the app is not Running yet.
  - With O(wait), the module waits after each eviction until the app runs, settled, on
    the better node.
  - With O(until_released), the module repeats the pass every O(repeat_interval) seconds,
    as the scheduled job would, until a pass holds no app, and fails when apps are still
    held after O(repeat_timeout) seconds. Each pass whose decisions differ from the
    previous one's is an entry of RV(events), so a long wait prints one line per change,
    not one per pass.
  - In check mode the evictions are server-side dry runs; the diff shows each app's
    move. A check-mode run makes one pass.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - homelab.k8s_ha.request_timeout
options:
  workloads:
    description: The Deployments to fail back, each with C(namespace) and C(name).
    type: list
    elements: dict
    required: true
  window_seconds:
    description: How long the better node must have been Ready before a pod is evicted towards it.
    type: int
    default: 60
  wait:
    description: After an eviction, wait until the app runs on the better node.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait per evicted app.
    type: int
    default: 300
  poll_interval:
    description: Seconds between two reads while waiting.
    type: float
    default: 2
  until_released:
    description: Repeat the pass every O(repeat_interval) seconds until no app is held.
    type: bool
    default: false
  repeat_interval:
    description: Seconds between two passes with O(until_released).
    type: float
    default: 300
  repeat_timeout:
    description: Seconds after which O(until_released) gives up and fails, naming the apps held.
    type: float
    default: 900
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Fail sonarr and prowlarr back to k3s-w1 once it has been Ready for two minutes
  homelab.k8s_ha.failback_guard:
    workloads:
      - {namespace: media, name: sonarr}
      - {namespace: media, name: prowlarr}
    window_seconds: 120
  register: failback

- name: The failover drill's failback, one pass every 5 minutes until nothing is held
  homelab.k8s_ha.failback_guard:
    workloads:
      - {namespace: media, name: sonarr}
    window_seconds: 120
    until_released: true
    repeat_interval: 300
    repeat_timeout: 900
"""

RETURN = r"""
decisions:
  description: Per app what the guard decided (C(evict), C(hold) or C(none)), for which pod, from and to which node, and why.
  returned: always
  type: list
  elements: dict
evicted:
  description: The pods evicted (in check mode, that would be), with the app and both nodes.
  returned: always
  type: list
  elements: dict
held:
  description: The apps held back, with the reasons (the better node's blockers or the eviction's refusal).
  returned: success
  type: list
  elements: dict
passes:
  description: How many passes the run made (1 without O(until_released)).
  returned: always
  type: int
events:
  description:
    - Each eviction and each change of the app's pods while waiting, with seconds since the start.
    - With O(until_released), also each pass whose decisions changed (C(app) null).
  returned: always
  type: list
  elements: dict
"""

from ansible_collections.homelab.k8s_ha.plugins.module_utils.failback_guard import run_failback_guard
from ansible_collections.homelab.k8s_ha.plugins.module_utils.kube import K8sHaModule, argument_spec


def main():
    run_failback_guard(K8sHaModule(argument_spec(
        workloads=dict(type="list", elements="dict", required=True),
        window_seconds=dict(type="int", default=60),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=300),
        poll_interval=dict(type="float", default=2),
        until_released=dict(type="bool", default=False),
        repeat_interval=dict(type="float", default=300),
        repeat_timeout=dict(type="float", default=900),
    )))


if __name__ == "__main__":
    main()
