#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: linstor_evacuate
short_description: The LINSTOR guard of a node remediation - faulty check, evacuate, restore, settle
version_added: 0.1.0
author:
  - homelab.k8s_ha maintainers (!UNKNOWN)
description:
  - Runbook 004's LINSTOR steps around a machine remediation, through python-linstor
    against the LINSTOR controller's REST API. Every failure is fail-fast and carries
    the controller's own message.
  - C(check) is C(linstor resource list --faulty) with the official client's rule (a
    volume disk state that is not UpToDate, Created, Attached, an intentional Diskless
    or TieBreaker; a DRBD connection that is not connected; DELETING; INACTIVE). It
    fails when a row is faulty unless O(fail_on_faulty=false).
  - C(evacuate) runs the faulty check first and refuses on a faulty row. Then
    C(linstor node evacuate) (not sent again while the node already has the EVACUATE
    flag) and waits until no resource of O(storage_pool) is left on the node, up to
    O(evacuation_timeout). At the timeout it fails, naming the resources left. With
    O(wait=false) it returns once the evacuation is sent.
  - C(wait_evacuated) is the second half of C(evacuate) as a step of its own, so that a
    playbook prints a line per phase. It sends nothing and waits until no resource of
    O(storage_pool) is left on the node, up to O(evacuation_timeout). It fails at once
    when resources are left on a node that is not evacuating.
  - C(restore) sends C(linstor node restore) only when the node has the EVACUATE or
    EVICTED flag, so a second run changes nothing.
  - C(settle) waits until no resource is Connecting, syncing (SyncTarget, a done
    percentage below 100) or DELETING, up to O(settle_timeout), then runs the faulty
    check again.
  - In check mode nothing is sent to the controller but reads; the result says what
    would be sent and what would be waited for, and C(settle) does not wait.
  - While it waits, the module renews the rollout lock given in O(lock) and stops when
    the lock is no longer its own.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - homelab.k8s_ha.request_timeout
  - homelab.k8s_ha.rollout_lock
options:
  action:
    description: What to do.
    type: str
    choices: [check, evacuate, wait_evacuated, restore, settle]
    required: true
  node:
    description:
      - The LINSTOR node (the Kubernetes node name under Piraeus).
      - Required for C(evacuate), C(wait_evacuated) and C(restore).
    type: str
  controller_url:
    description:
      - The controller's REST URL, for example C(http://linstor-controller.piraeus-datastore.svc:3370).
      - When not given, it is found from the Service C(linstor-controller) in
        O(linstor_namespace), or a Service there selecting O(controller_selector),
        through the Kubernetes API.
    type: str
  linstor_namespace:
    description: Where Piraeus runs the controller.
    type: str
    default: piraeus-datastore
  controller_selector:
    description: The controller's pod labels (C(k=v[,k=v])), to find its Service.
    type: str
    default: app.kubernetes.io/component=linstor-controller
  storage_pool:
    description: The storage pool whose resources must leave the node before the remediation.
    type: str
    default: lvm-thick
  wait:
    description: With C(evacuate), wait until the resources have left the node; V(false) only sends the evacuation.
    type: bool
    default: true
  evacuation_timeout:
    description: How long C(evacuate) and C(wait_evacuated) wait, in seconds or as a duration (C(45m), C(1h30m)).
    type: str
    default: 45m
  settle_timeout:
    description: How long C(settle) waits, in seconds or as a duration.
    type: str
    default: 30m
  request_timeout:
    description: Seconds one REST request may take.
    type: int
    default: 60
  fail_on_faulty:
    description: With C(check), fail when a resource is faulty. C(evacuate) and C(settle) always do.
    type: bool
    default: true
  poll_interval:
    description: Seconds between two reads while waiting.
    type: float
    default: 10
requirements:
  - python-linstor >= 1.20.0
  - kubernetes >= 24.2.0 (only to find the controller's Service)
"""

EXAMPLES = r"""
- name: Assert that LINSTOR has no faulty resource
  homelab.k8s_ha.linstor_evacuate:
    action: check

- name: Evacuate worker-1 from lvm-thick before its machine is remediated
  homelab.k8s_ha.linstor_evacuate:
    action: evacuate
    node: worker-1
    evacuation_timeout: 45m

- name: The same in two steps, each printing its own line - send the evacuation
  homelab.k8s_ha.linstor_evacuate:
    action: evacuate
    node: worker-1
    wait: false

- name: Wait until worker-1's resources of lvm-thick are gone
  homelab.k8s_ha.linstor_evacuate:
    action: wait_evacuated
    node: worker-1

- name: After the reboot, restore the node and wait until LINSTOR has settled
  homelab.k8s_ha.linstor_evacuate:
    action: "{{ item }}"
    node: worker-1
  loop: [restore, settle]
"""

RETURN = r"""
controller_url:
  description: The controller the module talked to.
  returned: always
  type: str
faulty:
  description: The faulty rows (resource, node, state, failed connections).
  returned: when action is check, evacuate or settle
  type: list
  elements: dict
remaining:
  description: The node's resources of the storage pool; empty once evacuated (with O(wait=false), those still there).
  returned: when action is evacuate or wait_evacuated
  type: list
  elements: dict
unsettled:
  description: Resources still Connecting, syncing or DELETING (C(settle)).
  returned: when action is settle
  type: list
  elements: dict
node_flags:
  description: The node's LINSTOR flags after the action.
  returned: when a node is given
  type: list
  elements: str
events:
  description: Progress, with seconds since the start.
  returned: always
  type: list
  elements: dict
"""

from ansible_collections.homelab.k8s_ha.plugins.module_utils.kube import K8sHaModule, argument_spec
from ansible_collections.homelab.k8s_ha.plugins.module_utils.linstor_evacuate import run_linstor_evacuate
from ansible_collections.homelab.k8s_ha.plugins.module_utils.cluster_lock import LOCK_OPTIONS


def main():
    run_linstor_evacuate(K8sHaModule(argument_spec(
        action=dict(type="str", choices=["check", "evacuate", "wait_evacuated", "restore", "settle"], required=True),
        node=dict(type="str"),
        controller_url=dict(type="str"),
        linstor_namespace=dict(type="str", default="piraeus-datastore"),
        controller_selector=dict(type="str", default="app.kubernetes.io/component=linstor-controller"),
        storage_pool=dict(type="str", default="lvm-thick"),
        evacuation_timeout=dict(type="str", default="45m"),
        settle_timeout=dict(type="str", default="30m"),
        poll_interval=dict(type="float", default=10),
        request_timeout=dict(type="int", default=60),
        fail_on_faulty=dict(type="bool", default=True),
        wait=dict(type="bool", default=True),
        lock=dict(type="dict", options=LOCK_OPTIONS),
    ), required_if=[["action", "evacuate", ["node"]], ["action", "wait_evacuated", ["node"]],
                    ["action", "restore", ["node"]]]))


if __name__ == "__main__":
    main()
