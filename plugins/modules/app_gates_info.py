#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: app_gates_info
short_description: Runbook 002's pre-migration safety gates and data-model class of one app
version_added: 0.1.0
author:
  - homelab.k8s_ha maintainers (!UNKNOWN)
description:
  - Read-only. Evaluates the safety gates of runbook 002 section 3.1 for one Deployment or
    StatefulSet, each with its evidence.
  - The gates are no CrashLoopBackOff; restarts in the last hour at most O(restart_bound)
    (from pod status, a container whose last termination is within the hour and whose
    restart count exceeds the bound); readiness and liveness probes on every container and
    every pod Ready; a PodDisruptionBudget that selects the pods and is appropriate
    (maxUnavailable 0 for a single stateful replica, at least one and fewer than all for
    more); cpu and memory requests on every container.
  - With claims backed by Longhorn, every volume must be healthy with one replica per
    node, on at least two nodes.
  - With O(secondary_node), the guardrails must be intact. The node carries O(lane_taint),
    and every pod on it that no DaemonSet owns tolerates that taint (has opted in).
  - Classifies the app as C(stateless), C(rwx_shareable), C(rwo_single_writer) or
    C(fragile_db), from its claims' access modes and its images, with the reason.
  - With O(strategy), refuses a strategy that does not fit the class. For example,
    C(active_active) on single-writer storage is refused.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - homelab.k8s_ha.request_timeout
options:
  namespace:
    description: Namespace of the app.
    type: str
    required: true
  name:
    description: Name of the app's workload.
    type: str
    required: true
  kind:
    description: Kind of the workload.
    type: str
    choices: [Deployment, StatefulSet]
    default: Deployment
  strategy:
    description: The migration strategy to check against the app's class.
    type: str
    choices: [active_active, controlled_failover, hybrid]
  restart_bound:
    description: Restarts allowed within the last hour per container.
    type: int
    default: 3
  secondary_node:
    description: The secondary lane's node, for the guardrails gate.
    type: str
  lane_taint:
    description:
      - The secondary lane's taint, for the guardrails gate.
      - A taint with keys other than these, or without O(lane_taint.key) or O(lane_taint.effect),
        fails before any request.
    type: dict
    suboptions:
      key:
        description: Taint key.
        type: str
        required: true
      value:
        description: Taint value (may be empty).
        type: str
      effect:
        description: Taint effect.
        type: str
        required: true
        choices: [NoSchedule, PreferNoSchedule, NoExecute]
  longhorn_namespace:
    description:
      - Namespace of Longhorn's objects.
      - When the app's claims are Longhorn volumes and it holds no volume at all, a
        namespace that does not exist fails the module, naming this option.
    type: str
    default: longhorn-system
  argocd_application:
    description:
      - The Argo CD Application that deploys the app, returned in RV(applications) when
        Argo CD's Application kind is served and the Application exists. With the app's
        HorizontalPodAutoscalers (RV(hpas)) it is what holds the app still for a cutover
        window, read here so the plan needs no read of its own.
    type: dict
    suboptions:
      namespace:
        description: The Application's namespace.
        type: str
        required: true
      name:
        description: The Application's name.
        type: str
        required: true
  databases:
    description: Image names that make an app with claims a fragile database; defaults to a built-in list.
    type: list
    elements: str
    default: []
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Runbook 002 section 3.1 for arr, before strategy B
  homelab.k8s_ha.app_gates_info:
    namespace: apps
    name: arr
    strategy: controlled_failover
    secondary_node: worker-1
    lane_taint: {key: workload-lane, value: secondary, effect: NoSchedule}
  register: gates
"""

RETURN = r"""
classification:
  description: The app's class and the reason.
  returned: success
  type: dict
  sample: {"class": "rwo_single_writer", "reason": "single-writer storage: arr-config (ReadWriteOnce)"}
strategy_refusal:
  description: Why O(strategy) does not fit the class; null when it fits or none was given.
  returned: success
  type: str
gates:
  description: Each gate with C(name), C(passed) and C(evidence).
  returned: success
  type: list
  elements: dict
selector:
  description: The workload's C(spec.selector.matchLabels), the labels of its pods.
  returned: success
  type: dict
  sample: {"app": "arr"}
restarts:
  description:
    - The container restart counts of the workload's pods now, by C(namespace/pod) with the pod's uid.
    - The baseline of M(homelab.k8s_ha.app_health_info)'s O(homelab.k8s_ha.app_health_info#module:restarts_before).
  returned: success
  type: dict
passed:
  description: Every gate passed and the strategy fits.
  returned: success
  type: bool
hpas:
  description: The HorizontalPodAutoscalers (C(autoscaling/v2)) of O(namespace), as the API server returns them.
  returned: success
  type: list
  elements: dict
applications:
  description:
    - O(argocd_application) as the API server returns it, in a list; empty when it was not
      given, Argo CD's Application kind is not served, or it does not exist.
  returned: success
  type: list
  elements: dict
report:
  description: The class and the gates as lines a person reads.
  returned: success
  type: list
  elements: str
"""

from ansible_collections.homelab.k8s_ha.plugins.module_utils.app_gates import run_app_gates_info
from ansible_collections.homelab.k8s_ha.plugins.module_utils.kube import (
    K8sHaModule,
    argument_spec,
)
from ansible_collections.homelab.k8s_ha.plugins.module_utils.lane import TAINT_OPTIONS


def main():
    run_app_gates_info(K8sHaModule(argument_spec(
        namespace=dict(type="str", required=True),
        name=dict(type="str", required=True),
        kind=dict(type="str", choices=["Deployment", "StatefulSet"], default="Deployment"),
        strategy=dict(type="str", choices=["active_active", "controlled_failover", "hybrid"]),
        restart_bound=dict(type="int", default=3),
        secondary_node=dict(type="str"),
        lane_taint=dict(type="dict", options=TAINT_OPTIONS),
        longhorn_namespace=dict(type="str", default="longhorn-system"),
        argocd_application=dict(type="dict", options=dict(
            namespace=dict(type="str", required=True), name=dict(type="str", required=True))),
        databases=dict(type="list", elements="str", default=[]),
    ), supports_check_mode=True))


if __name__ == "__main__":
    main()
