#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: longhorn_volume_replicas
short_description: Set the replica count of Longhorn volumes, one volume at a time
version_added: 0.1.0
author:
  - homelab.k8s_ha maintainers (!UNKNOWN)
description:
  - Reconciles C(spec.numberOfReplicas) of Longhorn volumes (C(volumes.longhorn.io/v1beta2)),
    all of them or those named by volume or by claim, O(concurrency) volumes at a time.
  - Before anything is written, every selected volume is checked. A volume that changes
    must be attached and healthy, hold no two replicas on one node, and have enough
    eligible nodes without a replica of it, so that it ends with O(replicas) replicas on as
    many distinct nodes. A node is eligible when Longhorn allows scheduling on it, it is
    Ready, and it is not cordoned while C(disable-scheduling-on-cordoned-node) is true. Any
    problem fails the run with every problem listed and nothing changed.
  - Before each batch, no rebuild may be in flight anywhere (no C(WO) in any engine's
    C(replicaModeMap), no C(isRebuilding)) and the batch's volumes must be healthy.
  - After each patch (with C(resourceVersion), retried on conflict) the module waits,
    polling every O(poll_interval) seconds up to O(wait_timeout), until the volume is
    healthy with exactly O(replicas) running replicas on as many distinct nodes.
  - The rebuild-storm guard stops the whole run when a replica fails during the wait or a
    volume rebuilds more replicas than were added. A volume that is no longer attached
    during its wait stops it too (Longhorn rebuilds only while a volume is attached and
    fails a rebuild when it detaches). The failure reports the volumes done,
    the one stopped at, those not started, and the prior counts of the patched volumes.
  - In check mode the module returns the plan (volumes, from and to, where replicas are
    and where new ones can go) and writes nothing.
  - Progress is returned in RV(events), one entry per state change of a volume.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - homelab.k8s_ha.request_timeout
options:
  replicas:
    description:
      - The number of replicas every selected volume should have (1 to 20; a boolean is refused).
      - Exactly one of O(replicas) and O(replicas_by_volume) is required.
    type: int
  replicas_by_volume:
    description:
      - Volume name to its wanted number of replicas; selects those volumes. This is the
        form of RV(rollback), so passing a run's RV(rollback) puts the counts back.
      - Each value is an integer from 1 to 20, as for O(replicas). A boolean, a float or
        any other value fails before any request, naming C(replicas_by_volume.<volume>).
    type: dict
  names:
    description: Volumes to reconcile, by Longhorn volume name.
    type: list
    elements: str
    default: []
  pvcs:
    description:
      - Volumes to reconcile, by the claim bound to them, as C(NAMESPACE/NAME).
      - With neither O(names) nor O(pvcs), every volume in O(namespace) is reconciled.
    type: list
    elements: str
    default: []
  concurrency:
    description: How many volumes are patched and waited for together.
    type: int
    default: 1
  wait_timeout:
    description: Seconds to wait for each batch to become healthy before the run stops.
    type: int
    default: 1800
  poll_interval:
    description: Seconds between two reads while waiting.
    type: float
    default: 5
  keep_on:
    description:
      - Nodes whose replicas stay, in order of preference, when a volume goes down to fewer
        replicas. Longhorn does not remove an extra healthy replica by itself (only for an
        eviction, data locality or replica auto-balance), so the module lowers
        C(numberOfReplicas) and then deletes the replicas it does not keep, as the plan
        names them.
      - Where replica auto-balance is on for a volume (its C(replicaAutoBalance), else the
        C(replica-auto-balance) setting), Longhorn would remove an extra replica of its own
        choosing at the same time. So the write that lowers C(numberOfReplicas) also sets
        C(replicaAutoBalance) to C(disabled) for that volume, and the volume gets its own
        value back once its wait is over (or the run stops); the events say both.
      - Kept first are replicas on these nodes, then the one on the node the volume is
        attached to, then running ones, then by name. A failed replica is never kept.
      - With O(keep_on) set, a volume without a healthy replica on any of these nodes is a
        problem reported before anything is written.
    type: list
    elements: str
    default: []
  if_uncordoned:
    description:
      - Nodes to judge as if they were uncordoned, for a plan made in check mode before an
        earlier step of the same run uncordons them.
    type: list
    elements: str
    default: []
  namespace:
    description:
      - Namespace of Longhorn's objects.
      - When it holds no volume and no setting, a namespace that does not exist fails the
        run before any write, naming this option.
    type: str
    default: longhorn-system
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Runbook 001 section 2.4, two replicas per volume, one volume at a time
  homelab.k8s_ha.longhorn_volume_replicas:
    replicas: 2
  register: volumes

- name: Only the volumes of two claims
  homelab.k8s_ha.longhorn_volume_replicas:
    replicas: 2
    pvcs: [apps/arr-config, apps/qdrant-storage]
"""

RETURN = r"""
plan:
  description:
    - One step per selected volume, with C(from), C(to), C(nodes_now), C(add_on) or C(add_candidates), C(problems).
    - When a volume goes down, C(keep) and C(remove) are the replicas it keeps and deletes, each C(name) and C(node).
  returned: always
  type: list
  elements: dict
plan_lines:
  description: The plan as one line per volume.
  returned: always
  type: list
  elements: str
  sample: ["pvc-arr (apps/arr-config): 1 -> 2 replicas; now on miniserver; adds 1 on worker-1"]
nodes:
  description: Every Longhorn node and why it cannot take a new replica (null when it can).
  returned: always
  type: dict
done:
  description: The volumes this run brought to the wanted count, in order.
  returned: always
  type: list
  elements: str
remaining:
  description: On failure, the volumes of the plan not brought to the wanted count.
  returned: failure
  type: list
  elements: str
stopped:
  description: On failure, the volumes the run stopped at, why, and whether they were patched.
  returned: failure
  type: dict
rollback:
  description: Volume name to its replica count before this run, for every volume patched.
  returned: always
  type: dict
  sample: {"pvc-arr": 1}
events:
  description: Progress, one entry per state change of a volume, with seconds since the start.
  returned: always
  type: list
  elements: dict
  sample: [{"t": 3.1, "volume": "pvc-arr", "message": "pvc-arr: degraded, 1/2 replicas running on 1 node(s)"}]
"""

from ansible_collections.homelab.k8s_ha.plugins.module_utils.kube import (
    K8sHaModule,
    argument_spec,
)
from ansible_collections.homelab.k8s_ha.plugins.module_utils.longhorn_volume_replicas import (
    run_longhorn_volume_replicas,
)


def main():
    run_longhorn_volume_replicas(K8sHaModule(argument_spec(
        replicas=dict(type="int"),
        replicas_by_volume=dict(type="dict"),
        names=dict(type="list", elements="str", default=[]),
        pvcs=dict(type="list", elements="str", default=[]),
        concurrency=dict(type="int", default=1),
        wait_timeout=dict(type="int", default=1800),
        poll_interval=dict(type="float", default=5),
        keep_on=dict(type="list", elements="str", default=[]),
        if_uncordoned=dict(type="list", elements="str", default=[]),
        namespace=dict(type="str", default="longhorn-system"),
    ), mutually_exclusive=[("replicas", "replicas_by_volume"), ("replicas_by_volume", "names"),
                           ("replicas_by_volume", "pvcs")],
        required_one_of=[("replicas", "replicas_by_volume")]))


if __name__ == "__main__":
    main()
