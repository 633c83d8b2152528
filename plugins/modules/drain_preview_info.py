#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: drain_preview_info
short_description: What a drain of a node would do, asked of the API server as dry runs
version_added: 0.1.0
author:
  - homelab.k8s_ha maintainers (!UNKNOWN)
description:
  - Runbook 001 section 2.5. It answers what
    C(kubectl drain NODE --ignore-daemonsets --delete-emptydir-data --force --dry-run=server)
    answers, per pod.
  - The cordon is sent as a server-side dry-run patch.
  - Each pod kubectl would evict gets a server-side dry-run eviction. The API server checks
    PodDisruptionBudgets for it, so a pod a budget protects shows as blocked, with the
    server's message.
  - DaemonSet and static pods are skipped. Pods without a controller and pods with
    C(emptyDir) volumes are noted, or refused when O(force) or O(delete_emptydir_data) is
    false.
  - Writes nothing.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - homelab.k8s_ha.request_timeout
options:
  node:
    description: The node to drain.
    type: str
    required: true
  ignore_daemonsets:
    description: As C(--ignore-daemonsets).
    type: bool
    default: true
  delete_emptydir_data:
    description: As C(--delete-emptydir-data).
    type: bool
    default: true
  force:
    description: As C(--force), for pods without a controller.
    type: bool
    default: true
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Runbook 001 section 2.5, the dry-run drain of worker-1
  homelab.k8s_ha.drain_preview_info:
    node: worker-1
  register: drain
"""

RETURN = r"""
pods:
  description: Every pod on the node with C(outcome) (evicted, blocked, skipped, refused) and C(detail).
  returned: always
  type: list
  elements: dict
cordon_refusal:
  description: The API server's refusal of the dry-run cordon, or null.
  returned: always
  type: str
drainable:
  description: The cordon and every eviction would be accepted.
  returned: always
  type: bool
report:
  description: The outcome as lines a person reads.
  returned: always
  type: list
  elements: str
"""

from ansible_collections.homelab.k8s_ha.plugins.module_utils.kube import (
    K8sHaModule,
    argument_spec,
)
from ansible_collections.homelab.k8s_ha.plugins.module_utils.drain_preview import (
    run_drain_preview_info,
)


def main():
    run_drain_preview_info(K8sHaModule(argument_spec(
        node=dict(type="str", required=True),
        ignore_daemonsets=dict(type="bool", default=True),
        delete_emptydir_data=dict(type="bool", default=True),
        force=dict(type="bool", default=True),
    )))


if __name__ == "__main__":
    main()
