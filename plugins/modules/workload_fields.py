#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: workload_fields
short_description: Set named fields of a workload, return their prior values, wait for the rollout
version_added: 0.1.0
author:
  - homelab.k8s_ha maintainers (!UNKNOWN)
description:
  - Sets fields of one object (a Deployment by default) addressed by path, such as
    C(spec.replicas) or C(spec.template.spec.containers[coredns].resources). A list item is
    addressed by its name in brackets. A value of V(null) removes the field.
  - A wanted value is compared as a subset of the stored one, so defaults the API server
    fills in (for example a probe's C(timeoutSeconds)) do not count as a difference and a
    second run changes nothing.
  - Returns the prior value of every changed field in RV(rollback); passing those as
    O(fields) with O(compare=exact) restores the object exactly.
  - One read-modify-write with C(resourceVersion), retried on conflict. In check mode the
    write is a server-side dry run and the diff is returned.
  - For a Deployment, waits until the rollout of the new generation is complete, with each
    change of state returned in RV(events).
  - With O(targets), one call does the same for several objects, one after the other (each
    write waits for its rollout before the next); it returns RV(results) shaped as a loop
    over the module registers them.
  - Before the first write it finds who manages each target (Argo CD, Flux, k3s, Helm) from the
    markers in the object's metadata and the manager's own object, and returns it in
    RV(manager). Under O(managed=refuse) a target whose manager would put a live edit back
    (an Argo CD Application that syncs automatically, an unsuspended Flux Kustomization or
    HelmRelease, a k3s packaged manifest) fails the call before any write, naming the
    manager and what to do; under O(managed=suspend) the call suspends that manager first.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - homelab.k8s_ha.request_timeout
options:
  name:
    description: Name of the object. One of O(name) (with O(namespace) and O(fields)) and
      O(targets) is required.
    type: str
  namespace:
    description: Namespace of the object.
    type: str
  kind:
    description: Kind of the object (with O(targets), of the targets that name none).
    type: str
    default: Deployment
  api_version:
    description: API version of the object (with O(targets), of the targets that name none).
    type: str
    default: apps/v1
  fields:
    description: Field path (under C(spec)) to the wanted value; V(null) removes the field.
    type: dict
  targets:
    description:
      - Several objects in one call, each with O(name), O(namespace), O(fields) and
        optionally O(kind), O(api_version), O(compare), O(wait), O(wait_timeout) and
        O(poll_interval) of its own (the top-level ones otherwise).
      - Every target's fields are checked against the live object before the first write.
        A failure on a target stops the call there with a message that starts
        C(targets[i] (namespace/name)), and RV(results) still holds the targets before it,
        whose writes were made.
    type: list
    elements: dict
    suboptions:
      name:
        description: Name of the object.
        type: str
        required: true
      namespace:
        description: Namespace of the object.
        type: str
        required: true
      kind:
        description: Kind of the object.
        type: str
      api_version:
        description: API version of the object.
        type: str
      fields:
        description: As O(fields).
        type: dict
        required: true
      compare:
        description: As O(compare).
        type: str
        choices: [subset, exact]
      wait:
        description: As O(wait).
        type: bool
      wait_timeout:
        description: As O(wait_timeout).
        type: int
      poll_interval:
        description: As O(poll_interval).
        type: float
  compare:
    description:
      - How a field counts as already set (with O(targets), for the targets that name none).
      - V(subset), for a desired state, when every key of the wanted value has that value
        in the stored one (the API server's defaults may add more).
      - V(exact), for restoring recorded prior values (RV(rollback)), only when the stored
        value equals the wanted one. An empty map then restores an empty map; under
        V(subset) an empty map is already covered by any map.
    type: str
    choices: [subset, exact]
    default: subset
  managed:
    description:
      - What to do with a target whose manager would put a live edit back. One policy for
        every manager, or a dict by manager (C(argocd), C(flux), C(k3s), C(helm)) whose
        managers not named get V(refuse).
      - V(refuse) fails before any write, naming the manager and the kubectl command that
        suspends it (or make the change in Git).
      - V(suspend) (C(argocd) and C(flux) only; C(k3s) is then refused) suspends the manager
        first, as a target of its own before the first target it manages, with C(targets)
        only. An Argo CD Application loses C(spec.syncPolicy.automated), a Flux
        Kustomization or HelmRelease gets C(spec.suspend=true). It is a planned change with its
        prior value in its RV(rollback), so the rollback resumes the manager.
      - V(report) only returns the manager in RV(manager). For putting recorded prior values
        back (a rollback, a window's release), which is the state the manager holds anyway.
    type: raw
    default: refuse
  held:
    description:
      - Managers this run holds still before its first write, each with C(kind),
        C(namespace) and C(name) (runbook 002's window turns its Argo CD Application's
        automated sync off). A target they manage is not refused.
    type: list
    elements: dict
    default: []
  argocd_namespace:
    description: The namespace of Argo CD's Applications whose tracking id names none.
    type: str
    default: argocd
  wait:
    description: For a Deployment, wait for the rollout after a change.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for the rollout.
    type: int
    default: 300
  poll_interval:
    description:
      - The longest time, in seconds, between two reads while waiting for the rollout.
      - A watch on the Deployment wakes the wait as soon as it changes, so the rollout's end
        is seen when it happens, not on the next tick.
    type: float
    default: 2
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Two CoreDNS replicas with requests and limits (runbook 001 section 2.3)
  homelab.k8s_ha.workload_fields:
    namespace: kube-system
    name: coredns
    fields:
      spec.replicas: 2
      spec.template.spec.containers[coredns].resources:
        requests: {cpu: 50m, memory: 128Mi}
        limits: {cpu: 200m, memory: 256Mi}
  register: coredns

- name: Put the fields back as they were
  homelab.k8s_ha.workload_fields:
    namespace: kube-system
    name: coredns
    fields: "{{ coredns.rollback }}"
    compare: exact

- name: Plan the tolerations of two DaemonSets in one call (check mode)
  homelab.k8s_ha.workload_fields:
    kind: DaemonSet
    targets:
      - {namespace: kube-system, name: svclb-traefik,
         fields: {spec.template.spec.tolerations: [{key: workload-lane, operator: Exists}]}}
      - {namespace: longhorn-system, name: longhorn-csi-plugin,
         fields: {spec.template.spec.tolerations: [{key: workload-lane, operator: Exists}]}}
    compare: exact
  check_mode: true
  register: plan
"""

RETURN = r"""
before:
  description: The value of every named field before the run (null when absent).
  returned: success
  type: dict
after:
  description: The value of every named field after the run.
  returned: success
  type: dict
rollback:
  description: The prior value of every field this run changes; null when it was absent.
  returned: always
  type: dict
  sample: {"spec.replicas": 1, "spec.template.spec.topologySpreadConstraints": null}
manager:
  description:
    - Who manages the object and what it does to a live edit, one line a person reads
      (several managers separated by C(; )); null when no manager marks it.
  returned: always
  type: str
  sample: "Flux Kustomization flux-system/apps (label kustomize.toolkit.fluxcd.io/name): suspended; its next reconciliation after a resume puts the edit back"
events:
  description: The rollout's progress, one entry per change, with seconds since the write.
  returned: always
  type: list
  elements: dict
results:
  description:
    - With O(targets), one result per target in order, as a loop over the module registers
      them; each has RV(before), RV(after), RV(rollback), RV(events), C(changed), C(item)
      (that target's options, with the O(kind) and O(api_version) it was done to), RV(manager) and, in
      diff mode, C(diff). The top-level RV(before),
      RV(after), RV(rollback) and RV(events) are then not returned.
  returned: when O(targets) is given
  type: list
  elements: dict
"""

from ansible_collections.homelab.k8s_ha.plugins.module_utils.fields import COMPARE
from ansible_collections.homelab.k8s_ha.plugins.module_utils.kube import (
    K8sHaModule,
    argument_spec,
)
from ansible_collections.homelab.k8s_ha.plugins.module_utils.workload_fields import (
    run_workload_fields,
)


def main():
    run_workload_fields(K8sHaModule(
        argument_spec(
            name=dict(type="str"),
            namespace=dict(type="str"),
            kind=dict(type="str", default="Deployment"),
            api_version=dict(type="str", default="apps/v1"),
            fields=dict(type="dict"),
            compare=dict(type="str", default="subset", choices=list(COMPARE)),
            targets=dict(type="list", elements="dict", options=dict(
                name=dict(type="str", required=True),
                namespace=dict(type="str", required=True),
                kind=dict(type="str"),
                api_version=dict(type="str"),
                fields=dict(type="dict", required=True),
                compare=dict(type="str", choices=list(COMPARE)),
                wait=dict(type="bool"),
                wait_timeout=dict(type="int"),
                poll_interval=dict(type="float"),
            )),
            managed=dict(type="raw", default="refuse"),
            held=dict(type="list", elements="dict", default=[]),
            argocd_namespace=dict(type="str", default="argocd"),
            wait=dict(type="bool", default=True),
            wait_timeout=dict(type="int", default=300),
            poll_interval=dict(type="float", default=2),
        ),
        required_one_of=[("name", "targets")],
        required_by={"name": ("namespace", "fields")},
        mutually_exclusive=[("name", "targets"), ("namespace", "targets"), ("fields", "targets")]))


if __name__ == "__main__":
    main()
