#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: k3s_posture_info
short_description: Report the k3s control plane's datastore, health and leader leases
version_added: 0.1.0
author:
  - homelab.k8s_ha maintainers (!UNKNOWN)
description:
  - Runbook 001 section 2.1, read-only.
  - Detects the datastore from what the API shows. A server labelled
    C(node-role.kubernetes.io/etcd=true) means embedded etcd. The node-args annotation
    C(k3s.io/node-args) can show C(--datastore-endpoint) (external) or C(--cluster-init)
    (etcd). A k3s server with neither is the single-server sqlite default. When O(server_files)
    is given (read from server-1 by the role), its findings come first.
  - Reads C(/readyz) and C(/healthz).
  - Reads the leader leases twice, O(lease_sample_seconds) apart. A lease renews when its
    C(renewTime) moves.
  - Returns the runbook's decision for the datastore found.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - homelab.k8s_ha.request_timeout
options:
  leases:
    description: Leases in C(kube-system) that must be renewing.
    type: list
    elements: str
    default: [kube-scheduler, kube-controller-manager]
  lease_sample_seconds:
    description: Seconds between the two reads of the leases (leaders renew every 2 s by default).
    type: float
    default: 5
  server_files:
    description:
      - What server-1's files show, when the role could read them.
      - C(config) is C(/etc/rancher/k3s/config.yaml) parsed, and C(db_entries) is the listing
        of C(/var/lib/rancher/k3s/server/db/).
    type: dict
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Runbook 001 section 2.1, report only
  homelab.k8s_ha.k3s_posture_info:
  register: posture
"""

RETURN = r"""
datastore:
  description: C(sqlite), C(embedded etcd), C(external datastore) or C(unknown).
  returned: always
  type: str
datastore_from_api:
  description: The datastore and the evidence as the API shows them.
  returned: always
  type: dict
datastore_from_host:
  description: The datastore and the evidence from server-1's files, when O(server_files) was given.
  returned: always
  type: dict
servers:
  description: Nodes labelled as control-plane servers.
  returned: always
  type: list
  elements: str
health:
  description: C(/readyz) and C(/healthz) with HTTP status and body.
  returned: always
  type: dict
leases:
  description: Per lease, its holder, the two renew times, whether it renews and its transitions.
  returned: always
  type: dict
healthy:
  description: Both health endpoints answered ok and every lease is renewing.
  returned: always
  type: bool
report:
  description: The findings as lines a person reads.
  returned: always
  type: list
  elements: str
"""

from ansible_collections.homelab.k8s_ha.plugins.module_utils.kube import (
    K8sHaModule,
    argument_spec,
)
from ansible_collections.homelab.k8s_ha.plugins.module_utils.k3s_posture import (
    run_k3s_posture_info,
)


def main():
    run_k3s_posture_info(K8sHaModule(argument_spec(
        leases=dict(type="list", elements="str", default=["kube-scheduler", "kube-controller-manager"]),
        lease_sample_seconds=dict(type="float", default=5),
        server_files=dict(type="dict"),
    )))


if __name__ == "__main__":
    main()
