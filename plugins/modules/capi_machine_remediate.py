#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: capi_machine_remediate
short_description: Remediate one unhealthy Cluster API machine of a no-spare Talos cluster
version_added: 0.1.0
author:
  - homelab.k8s_ha maintainers (!UNKNOWN)
description:
  - Runbook 004's remediation of a machine whose rollout timed out, with the runbook's
    guards checked first, every time, before anything is written.
  - "Guards: the TalosControlPlane has C(spec.rolloutStrategy.rollingUpdate.maxSurge: 0);
    every MachineDeployment of the cluster has maxSurge 0 and maxUnavailable 1 (v1beta1
    C(spec.strategy.rollingUpdate), v1beta2 C(spec.rollout.strategy.rollingUpdate)); no
    more than O(max_concurrent_unavailable) machines of the selected machine's scope
    (control plane, or workers) are unavailable or deleting, the selected one included."
  - "Selection: a machine is unhealthy when its phase is Failed, it carries
    C(cluster.x-k8s.io/remediate-machine), a HealthCheckSucceeded, NodeHealthy or
    NodeReady condition is False or Unknown (either API version's conditions), or its node
    is not Ready or gone. Control plane machines come first, one machine at a time."
  - "CAPI's own remediation: the selected machine is refused while a MachineHealthCheck of
    its cluster selects it and could have its owner replace it without the LINSTOR
    evacuation (not when the check or the Cluster is paused, or the Machine carries
    C(cluster.x-k8s.io/paused) or C(cluster.x-k8s.io/skip-remediation); not for a
    TalosControlPlane machine, whose provider remediates nothing), and while CAPI's
    remediation of it has started (OwnerRemediated or ExternallyRemediated False). The
    message gives the C(kubectl annotate) command that takes the machine out of the check."
  - "C(select) stops there and returns the machine, its node name and IP (the Machine's
    InternalIP, else ExternalIP, else the Node's InternalIP): the runbook's steps 1 and 2,
    so the LINSTOR evacuation can run before anything destructive."
  - "The reboot's tool is checked as soon as a machine is selected (both actions, check mode
    too) - O(talosctl) must be an executable file, and C(talosctl -n <ip> version), which
    only reads, must reach the node - so a run that could not reboot stops before any
    evacuation or delete, not after them."
  - "C(remediate) then deletes the Machine (with a resourceVersion precondition, so a
    machine that changed since it was read is not deleted), waits until it is gone,
    runs C(talosctl -n <ip> reboot --mode=<mode> --wait=true --timeout <t>), waits until
    the node is Ready, and waits until every machine of the scope is Running and
    healthy again (the rollout continues). A wait that runs out fails, saying what was
    done and what was not."
  - "With O(step) other than C(all), one call does one step of C(remediate), so a playbook
    prints a line per step: C(delete) (the guards, the selection, the delete and the wait
    until the Machine is gone), C(reboot) (talosctl), C(node_ready) (the wait for the node)
    and C(rollout) (the wait for the machines of the scope). The steps after C(delete)
    cannot read the deleted Machine: they take O(node), O(ip) and O(control_plane) from the
    C(delete) step's result."
  - In check mode the guards and the selection run, the delete is a server-side dry run,
    talosctl is not called, and the steps C(node_ready) and C(rollout) read once without
    waiting.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - homelab.k8s_ha.request_timeout
  - homelab.k8s_ha.rollout_lock
options:
  namespace:
    description: The namespace of the CAPI Cluster.
    type: str
    required: true
  cluster:
    description: The CAPI Cluster's name.
    type: str
    required: true
  action:
    description: C(select) only reads; C(remediate) deletes and reboots.
    type: str
    choices: [select, remediate]
    default: select
  machine:
    description:
      - Remediate this Machine (it must be unhealthy, and no control plane machine may be waiting before a worker).
      - Required for O(step=rollout), where it names the deleted Machine (its replacement is another one).
    type: str
  step:
    description:
      - Which part of C(remediate) this call does; C(all) does every step in one call.
      - The steps, in order, are C(delete), C(reboot), C(node_ready) and C(rollout).
    type: str
    choices: [all, delete, reboot, node_ready, rollout]
    default: all
  node:
    description: The remediated machine's node (the C(delete) step's RV(node)); required for the steps after C(delete).
    type: str
  ip:
    description: The address talosctl reboots (the C(delete) step's RV(ip)); required for O(step=reboot).
    type: str
  carry:
    description:
      - The labels and taints to put back on the node once it has registered again (the C(delete) step's RV(carry)).
      - CAPI deletes a worker's Node with its Machine, and the host registers a new one with only the kubelet's labels.
      - For O(step=node_ready); O(step=all) takes them from the node itself before the delete.
    type: dict
    suboptions:
      labels:
        description: Label keys and values.
        type: dict
      taints:
        description: Taints (C(key), C(value), C(effect)).
        type: list
        elements: dict
  control_plane:
    description:
      - Whether the remediated machine was a control plane machine (C(control_plane) of the C(delete) step's RV(machine)).
      - Required for O(step=rollout), which waits for the machines of that kind.
    type: bool
  scope:
    description: Which machines may be selected.
    type: str
    choices: [all, control_plane, workers]
    default: all
  max_concurrent_unavailable:
    description: The runbook's maxConcurrentUnavailable, per scope, the selected machine included.
    type: int
    default: 1
  capi_version:
    description: The Cluster API version to read; C(auto) takes v1beta2 when served, else v1beta1.
    type: str
    choices: [auto, v1beta1, v1beta2]
    default: auto
  talosctl:
    description: The talosctl command (a path, or a name on PATH).
    type: str
    default: talosctl
  talosconfig:
    description: The talosconfig file talosctl uses (C(--talosconfig)).
    type: path
  reboot_mode:
    description: C(talosctl reboot --mode).
    type: str
    choices: [default, powercycle, force]
    default: default
  reboot_timeout:
    description: C(talosctl reboot --timeout), a duration.
    type: str
    default: 30m
  delete_timeout:
    description: How long to wait for the Machine to be gone (drain, volume detach, hooks).
    type: str
    default: 15m
  ready_timeout:
    description: How long to wait for the node to be Ready after the reboot.
    type: str
    default: 30m
  rollout_timeout:
    description: How long to wait for every machine of the scope to be Running and healthy again.
    type: str
    default: 30m
  poll_interval:
    description: Seconds between two reads while waiting.
    type: float
    default: 5
requirements:
  - kubernetes >= 24.2.0
  - talosctl (for C(remediate))
"""

EXAMPLES = r"""
- name: Which machine needs remediation, and where does it run
  homelab.k8s_ha.capi_machine_remediate:
    namespace: default
    cluster: homelab
  register: target

- name: Delete it and reboot its node
  homelab.k8s_ha.capi_machine_remediate:
    namespace: default
    cluster: homelab
    action: remediate
    machine: "{{ target.machine.name }}"
    reboot_mode: powercycle
  when: target.machine

- name: The same one step per task (each prints its own line); first the delete
  homelab.k8s_ha.capi_machine_remediate:
    namespace: default
    cluster: homelab
    action: remediate
    step: delete
    machine: "{{ target.machine.name }}"
  register: deleted

- name: Then the reboot (node_ready and rollout follow the same way)
  homelab.k8s_ha.capi_machine_remediate:
    namespace: default
    cluster: homelab
    action: remediate
    step: reboot
    machine: "{{ deleted.machine.name }}"
    node: "{{ deleted.node }}"
    ip: "{{ deleted.ip }}"
"""

RETURN = r"""
machine:
  description: The selected machine (name, uid, control_plane, reasons); null when none needs remediation.
  returned: always
  type: dict
node:
  description: Its node's name.
  returned: when a machine is selected
  type: str
ip:
  description: The address talosctl uses.
  returned: when a machine is selected
  type: str
carry:
  description:
    - The node's labels and taints that a new registration of it would not bring back (C(labels), C(taints)).
    - Everything but the kubelet's own labels, the label domains CAPI syncs from the Machine, and controllers' taints.
  returned: when a machine is selected
  type: dict
restored:
  description: What O(step=node_ready) (or C(all)) put back on the node (C(labels), C(taints)); empty when nothing was missing.
  returned: when the node_ready step ran
  type: dict
talosctl:
  description: The reboot command.
  returned: when a machine is selected
  type: list
  elements: str
replacement:
  description: The Machine that took the node back after the remediation.
  returned: when action is remediate and the rollout was waited for (step all or rollout)
  type: str
waiting:
  description: The other unhealthy machines of the scope, in the order a later run would take them.
  returned: always
  type: list
  elements: str
capi_version:
  description: The Cluster API version read.
  returned: always
  type: str
events:
  description: Each step, with seconds since the start.
  returned: always
  type: list
  elements: dict
"""

from ansible_collections.homelab.k8s_ha.plugins.module_utils.capi_remediate import run_capi_machine_remediate
from ansible_collections.homelab.k8s_ha.plugins.module_utils.cluster_lock import LOCK_OPTIONS
from ansible_collections.homelab.k8s_ha.plugins.module_utils.kube import K8sHaModule, argument_spec


def main():
    run_capi_machine_remediate(K8sHaModule(argument_spec(
        namespace=dict(type="str", required=True),
        cluster=dict(type="str", required=True),
        action=dict(type="str", choices=["select", "remediate"], default="select"),
        machine=dict(type="str"),
        step=dict(type="str", choices=["all", "delete", "reboot", "node_ready", "rollout"], default="all"),
        node=dict(type="str"),
        ip=dict(type="str"),
        carry=dict(type="dict", options=dict(labels=dict(type="dict"), taints=dict(type="list", elements="dict"))),
        control_plane=dict(type="bool"),
        scope=dict(type="str", choices=["all", "control_plane", "workers"], default="all"),
        max_concurrent_unavailable=dict(type="int", default=1),
        capi_version=dict(type="str", choices=["auto", "v1beta1", "v1beta2"], default="auto"),
        talosctl=dict(type="str", default="talosctl"),
        talosconfig=dict(type="path"),
        reboot_mode=dict(type="str", choices=["default", "powercycle", "force"], default="default"),
        reboot_timeout=dict(type="str", default="30m"),
        delete_timeout=dict(type="str", default="15m"),
        ready_timeout=dict(type="str", default="30m"),
        rollout_timeout=dict(type="str", default="30m"),
        poll_interval=dict(type="float", default=5),
        lock=dict(type="dict", options=LOCK_OPTIONS),
    )))


if __name__ == "__main__":
    main()
