#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: app_health_info
short_description: Whether apps serve after a change, not only where their pods run
version_added: 0.1.0
author:
  - homelab.k8s_ha maintainers (!UNKNOWN)
description:
  - Read-only. For each app (its pods by label selector) checks that every live pod is
    Ready; with O(restarts_before), that no container restarted since that baseline and
    none waits in CrashLoopBackOff; that every Service selecting the app's pods has ready
    endpoints (EndpointSlices) and every Ready pod it selects is one of them; and, with an
    app's C(http_probe), that a GET through the API server's service proxy
    (C(/api/v1/namespaces/<ns>/services/<service>:<port>/proxy<path>)) returns the expected
    status. The proxy works from wherever the API server is reachable (AWX, Semaphore),
    unlike a C(curl) to an ingress.
  - Waits up to O(wait_timeout) for readiness, endpoints and the probe to pass; a restart
    ends the wait at once (waiting cannot undo it).
  - Never fails on a failed check; C(passed) and C(checks) say. Fails, before any read, on
    bad input, naming the field.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - homelab.k8s_ha.request_timeout
options:
  apps:
    description: The apps to check.
    type: list
    elements: dict
    required: true
    suboptions:
      namespace:
        description: The app's namespace.
        type: str
        required: true
      selector:
        description: The labels of the app's pods (its workload's C(spec.selector.matchLabels)).
        type: dict
        required: true
      name:
        description: How the checks name the app; defaults to C(<namespace>/<selector>).
        type: str
      http_probe:
        description:
          - The runbook's "curl returns 200", through the API server's service proxy.
          - A mapping with C(service), C(port) (number or name), C(path) (default C(/)),
            C(status) (default 200) and C(scheme) (C(http) or C(https)), or one string
            C([https:]service:port[/path]).
        type: raw
  restarts_before:
    description:
      - The C(restarts) this module returned before the change. With it, any container
        restart since then fails the restart check; without it no restart check is made
        (the call that takes the baseline).
    type: dict
  wait_timeout:
    description: Seconds to wait for the checks other than restarts to pass.
    type: int
    default: 60
  poll_interval:
    description: Seconds between reads while waiting.
    type: int
    default: 2
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Before the stage, the baseline
  homelab.k8s_ha.app_health_info:
    apps:
      - {namespace: apps, selector: {app: web}}
    wait_timeout: 0
  register: baseline

- name: After the stage
  homelab.k8s_ha.app_health_info:
    apps:
      - namespace: apps
        selector: {app: web}
        http_probe: web:80/healthz
    restarts_before: "{{ baseline.restarts }}"
  register: health
"""

RETURN = r"""
checks:
  description: Each check with C(name), C(passed) and C(detail).
  returned: success
  type: list
  elements: dict
  sample: [{"name": "apps/web: Service web has ready endpoints", "passed": true, "detail": "2 ready: web-1, web-2"}]
passed:
  description: Every check passed.
  returned: success
  type: bool
restarts:
  description: Each pod's container restart counts now, by C(namespace/pod) with its uid; the next call's O(restarts_before).
  returned: success
  type: dict
reads:
  description: How many times the apps were read (1 when the first read passed).
  returned: success
  type: int
"""

from ansible_collections.homelab.k8s_ha.plugins.module_utils.app_health import run_app_health_info
from ansible_collections.homelab.k8s_ha.plugins.module_utils.kube import (
    K8sHaModule,
    argument_spec,
)


def main():
    run_app_health_info(K8sHaModule(argument_spec(
        apps=dict(type="list", elements="dict", required=True, options=dict(
            namespace=dict(type="str", required=True),
            selector=dict(type="dict", required=True),
            name=dict(type="str"),
            http_probe=dict(type="raw"))),
        restarts_before=dict(type="dict"),
        wait_timeout=dict(type="int", default=60),
        poll_interval=dict(type="int", default=2),
    ), supports_check_mode=True))


if __name__ == "__main__":
    main()
