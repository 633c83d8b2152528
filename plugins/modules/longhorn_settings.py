#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: longhorn_settings
short_description: Ensure Longhorn settings, compared by meaning
version_added: 0.1.0
author:
  - homelab.k8s_ha maintainers (!UNKNOWN)
description:
  - Sets Longhorn settings (C(settings.longhorn.io/v1beta2), the top-level C(value)) to the
    wanted values, one patch with C(resourceVersion) per changed setting.
  - Values are compared by meaning. Longhorn 1.10 and later stores
    C(default-replica-count) as JSON per data engine, so V(2) equals
    C({"v1":"2","v2":"2"}) and a second run reports no change.
  - Names and values are checked against the known types (integer ranges, booleans,
    enumerations) before anything is written. When Longhorn's webhook refuses a value,
    its message is shown.
  - In check mode the patches are server-side dry runs; nothing is written.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - homelab.k8s_ha.request_timeout
options:
  settings:
    description:
      - Setting name to wanted value. Known settings are C(default-replica-count) (1 to
        20), C(replica-soft-anti-affinity) (boolean), C(replica-auto-balance)
        (C(disabled), C(least-effort), C(best-effort)),
        C(replica-replenishment-wait-interval) (seconds, 0 or more),
        C(concurrent-replica-rebuild-per-node-limit) (0 or more; 0 disables rebuilds) and
        C(node-drain-policy) (C(block-if-contains-last-replica), C(block-for-eviction),
        C(block-for-eviction-if-contains-last-replica), C(allow-if-replica-is-stopped),
        C(always-allow)) and C(taint-toleration) (tolerations of Longhorn's system-managed
        components as C(key=value:effect;key:effect), compared as a set; an effect is
        required and a key may not contain C(kubernetes.io)).
      - C(taint-toleration) is applied by Longhorn only while every volume is detached.
        Longhorn 1.10 stores a change at once and applies it whenever that happens next;
        this module refuses the change, before any write and in check mode too, while a
        volume is not detached, and names those volumes. After the write it waits until
        Longhorn reports the setting applied (C(status.applied)), at most 300 seconds.
    type: dict
    required: true
  namespace:
    description:
      - Namespace of the Setting objects.
      - When it holds no Setting at all, a namespace that does not exist fails the run
        before any write, naming this option.
    type: str
    default: longhorn-system
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Runbook 001 section 2.4, the global defaults
  homelab.k8s_ha.longhorn_settings:
    settings:
      default-replica-count: 2
      replica-soft-anti-affinity: false
      replica-auto-balance: disabled
      replica-replenishment-wait-interval: 600
      concurrent-replica-rebuild-per-node-limit: 1
  register: longhorn

- name: Put the prior values back
  homelab.k8s_ha.longhorn_settings:
    settings: "{{ longhorn.rollback }}"
"""

RETURN = r"""
settings:
  description: The stored value of every Setting read, after the change.
  returned: success
  type: dict
  sample: {"default-replica-count": "{\"v1\":\"2\",\"v2\":\"2\"}", "replica-auto-balance": "disabled"}
rollback:
  description: The stored value before the change of every setting this run changes.
  returned: success
  type: dict
  sample: {"default-replica-count": "{\"v1\":\"3\",\"v2\":\"3\"}"}
"""

from ansible_collections.homelab.k8s_ha.plugins.module_utils.kube import (
    K8sHaModule,
    argument_spec,
)
from ansible_collections.homelab.k8s_ha.plugins.module_utils.longhorn_settings import (
    run_longhorn_settings,
)


def main():
    run_longhorn_settings(K8sHaModule(argument_spec(
        settings=dict(type="dict", required=True),
        namespace=dict(type="str", default="longhorn-system"),
    )))


if __name__ == "__main__":
    main()
