#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: deployment_handover
short_description: Hand a single writer from one Deployment to another, one writer at a time
version_added: 0.1.0
author:
  - homelab.k8s_ha maintainers (!UNKNOWN)
description:
  - The scale flip of runbook 002's strategy B (controlled failover with dual
    Deployments), in the order that keeps a ReadWriteOnce volume to one writer.
  - First O(giver) is scaled to 0. Then the module waits until none of its pods is left,
    Terminating ones included, and until every ReadWriteOnce claim it mounts is detached.
    A claim counts as detached when its Longhorn volume reports C(detached) and no
    storage.k8s.io VolumeAttachment names its PersistentVolume. Only then is O(name)
    scaled to O(replicas), and the module waits until those pods are Ready.
  - Refused before any write when both sides already want pods, when the two pod
    templates mount different claims, when O(name) has replicas 0 but pods left, or when
    O(replicas) is more than 1 for a ReadWriteOnce claim.
  - A second run after a completed handover changes nothing. Each scale is a
    read-modify-write with C(resourceVersion), retried on conflict.
  - In check mode nothing is written. The diff shows both replica counts, and RV(steps)
    lists what would happen. A missing O(name) is allowed in check mode only, because
    the same run may create it.
  - A wait that runs out fails with the phase it stopped in, and says whether a writer
    still runs.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - homelab.k8s_ha.request_timeout
options:
  name:
    description: The Deployment that becomes the writer (scaled up last).
    type: str
    required: true
  giver:
    description: The Deployment that stops writing (scaled to 0 first).
    type: str
    required: true
  namespace:
    description: Namespace of both Deployments.
    type: str
    required: true
  replicas:
    description: Replicas of O(name) at the end; at most 1 with a ReadWriteOnce claim.
    type: int
    default: 1
  stop_timeout:
    description: Seconds to wait until the pods of O(giver) are gone.
    type: int
    default: 300
  detach_timeout:
    description: Seconds to wait until the claims' volumes are detached.
    type: int
    default: 300
  start_timeout:
    description: Seconds to wait until the pods of O(name) are Ready.
    type: int
    default: 300
  poll_interval:
    description:
      - The longest time, in seconds, between two reads while waiting.
      - A watch on the namespace's pods wakes the wait as soon as a pod changes (the old
        side's pods going, the new side's coming up); a volume's detachment is read on the
        next tick.
    type: float
    default: 1
  longhorn_namespace:
    description:
      - Namespace of Longhorn's volumes (read when Longhorn's CRDs are served).
      - When the claims are Longhorn volumes and it holds no volume at all, a namespace
        that does not exist fails the handover before its first write, naming this option.
    type: str
    default: longhorn-system
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Fail over notes-db to its standby on the secondary lane (runbook 002, strategy B)
  homelab.k8s_ha.deployment_handover:
    namespace: apps
    giver: notes-db-primary
    name: notes-db-standby
  register: failover

- name: Undo it
  homelab.k8s_ha.deployment_handover: "{{ failover.rollback | combine({'namespace': 'apps'}) }}"
"""

RETURN = r"""
rollback:
  description: The parameters of the handover that undoes this one (empty when nothing changed).
  returned: always
  type: dict
  sample: {"giver": "notes-db-standby", "name": "notes-db-primary", "replicas": 1}
claims:
  description: The ReadWriteOnce claims whose volumes must detach in between.
  returned: always
  type: list
  elements: str
steps:
  description: In check mode, what a real run would do, in order.
  returned: check mode with a change
  type: list
  elements: str
events:
  description: The handover's progress, one entry per change, with seconds since the first write and the phase.
  returned: always
  type: list
  elements: dict
stopped_at:
  description: The phase a failed wait stopped in (stopping, detaching or starting).
  returned: failure
  type: str
"""

from ansible_collections.homelab.k8s_ha.plugins.module_utils.kube import (
    K8sHaModule,
    argument_spec,
)
from ansible_collections.homelab.k8s_ha.plugins.module_utils.deployment_handover import (
    run_deployment_handover,
)


def main():
    run_deployment_handover(K8sHaModule(argument_spec(
        name=dict(type="str", required=True),
        giver=dict(type="str", required=True),
        namespace=dict(type="str", required=True),
        replicas=dict(type="int", default=1),
        stop_timeout=dict(type="int", default=300),
        detach_timeout=dict(type="int", default=300),
        start_timeout=dict(type="int", default=300),
        poll_interval=dict(type="float", default=1),
        longhorn_namespace=dict(type="str", default="longhorn-system"),
    )))


if __name__ == "__main__":
    main()
