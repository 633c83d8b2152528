#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: cluster_lock
short_description: Serialize rollouts of a cluster with a Lease
version_added: 0.1.0
author:
  - homelab.k8s_ha maintainers (!UNKNOWN)
description:
  - The runbook 004 mutex C(capi-rollout-<namespace>-<cluster>) as a
    C(coordination.k8s.io/v1) Lease of that name, so two rollouts of one cluster never
    run at once, whether started from AWX, Semaphore or a shell.
  - The lock is taken by creating the Lease. A Lease held by another holder is taken
    over only once it has expired (its C(renewTime) plus C(leaseDurationSeconds) is
    past), so a run that died cannot block the cluster for longer than
    O(duration_seconds). Every write carries the read C(resourceVersion); an HTTP 409
    means another run got there first, and the lock is read again.
  - Modules that wait long (M(homelab.k8s_ha.linstor_evacuate),
    M(homelab.k8s_ha.capi_machine_remediate)) take the same Lease in their C(lock)
    option and renew it while they wait; they stop when it is no longer theirs.
  - O(state=absent) deletes the Lease only if this holder has it (with a
    C(resourceVersion) precondition). Put it in an C(always) block.
  - In check mode nothing is written; the result says what would happen, and a lock
    held by another run is reported as a warning.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - homelab.k8s_ha.request_timeout
options:
  namespace:
    description: The namespace of the CAPI Cluster; part of the lock name.
    type: str
  cluster:
    description: The CAPI Cluster's name; part of the lock name.
    type: str
  name:
    description: The Lease's name, instead of C(capi-rollout-<namespace>-<cluster>).
    type: str
  lease_namespace:
    description: Where the Lease lives; O(namespace) when not given.
    type: str
  holder:
    description:
      - Who holds the lock, written to C(spec.holderIdentity). Unique per run, for
        example the AWX job id or host name, process and start time.
    type: str
    required: true
  state:
    description: C(present) holds the lock (take or renew), C(absent) releases it.
    type: str
    choices: [present, absent]
    default: present
  duration_seconds:
    description: How long the lock outlives its holder's last renewal (15 or more).
    type: int
    default: 300
  wait_timeout:
    description: Seconds to wait for a lock another run holds; C(0) stops at once with the holder's name.
    type: int
    default: 0
  poll_interval:
    description: Seconds between two reads while waiting.
    type: float
    default: 2
requirements:
  - kubernetes >= 24.2.0
notes:
  - Give either O(name) or both O(namespace) and O(cluster).
"""

EXAMPLES = r"""
- name: Take the rollout lock of cluster homelab, waiting up to ten minutes
  homelab.k8s_ha.cluster_lock:
    namespace: default
    cluster: homelab
    holder: "awx-job-{{ awx_job_id | default('local') }}"
    wait_timeout: 600
  register: rollout_lock

- name: Release it
  homelab.k8s_ha.cluster_lock:
    namespace: default
    cluster: homelab
    holder: "awx-job-{{ awx_job_id | default('local') }}"
    state: absent
"""

RETURN = r"""
lease:
  description: The Lease's name and namespace.
  returned: always
  type: dict
action:
  description: C(create), C(renew), C(takeover), C(release) or C(none); in check mode C(wait) when another run holds the lock.
  returned: always
  type: str
previous_holder:
  description: The holder whose expired Lease was taken over.
  returned: when state is present
  type: str
held_by:
  description: In check mode, the run that holds the lock now.
  returned: when another run holds the lock in check mode
  type: str
events:
  description: Waiting and takeover events, with seconds since the start.
  returned: always
  type: list
  elements: dict
"""

from ansible_collections.homelab.k8s_ha.plugins.module_utils.cluster_lock import run_cluster_lock
from ansible_collections.homelab.k8s_ha.plugins.module_utils.kube import K8sHaModule, argument_spec


def main():
    run_cluster_lock(K8sHaModule(argument_spec(
        namespace=dict(type="str"),
        cluster=dict(type="str"),
        name=dict(type="str"),
        lease_namespace=dict(type="str"),
        holder=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        duration_seconds=dict(type="int", default=300),
        wait_timeout=dict(type="int", default=0),
        poll_interval=dict(type="float", default=2),
    ), required_one_of=[["name", "cluster"]], required_by={"cluster": "namespace"}))


if __name__ == "__main__":
    main()
