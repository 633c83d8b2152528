# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of role capi_rollout (logic in module_utils/capi.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.k8s_ha.plugins.module_utils import capi, lease


def capi_sync_wave_errors(docs):
    """The sync-wave violations of rendered manifests (kubectl kustomize output)."""
    return capi.sync_wave_errors(docs)[0]


def capi_lock_name(namespace, cluster):
    """The rollout lock's Lease name, capi-rollout-<namespace>-<cluster> (lease.lock_name)."""
    try:
        return lease.lock_name(namespace, cluster)
    except ValueError as e:
        raise AnsibleFilterError("%s" % e)


def capi_rollout_plan(target, cluster, waiting, linstor, pool, evacuate=None):
    """{'items': [...], 'report': [...]} of one machine's remediation."""
    try:
        items, report = capi.rollout_plan(cluster, target, waiting, linstor, pool, evacuate)
    except (KeyError, TypeError) as e:
        raise AnsibleFilterError("capi_rollout_plan: %s" % e)
    return {"items": items, "report": report}


def capi_remediation_workflows(workflows, namespace, template, mutex):
    """The unfinished Workflows that hold, wait for or may take the runbook's Argo mutex
    (capi.remediation_workflows)."""
    try:
        return capi.remediation_workflows(workflows, namespace, template, mutex)
    except (AttributeError, TypeError) as e:
        raise AnsibleFilterError("capi_remediation_workflows: %s" % e)


def capi_workflow_guard_message(found, template, mutex):
    """Why a run refuses while the runbook's own remediation is in flight."""
    return capi.workflow_guard_message(found, template, mutex)


def capi_steps_result(results, names=None):
    """The per-phase results of one remediation as one (capi.steps_result)."""
    try:
        return capi.steps_result(results, names)
    except (AttributeError, TypeError) as e:
        raise AnsibleFilterError("capi_steps_result: %s" % e)


def capi_carry_missing(node, carry):
    """What ``node`` (a Node, or None) lacks of ``carry`` (capi.carry_missing), as text:
    empty when it has every label and taint."""
    if not node:
        return "the node is gone"
    missing = capi.carry_missing(node, carry)
    return capi.carry_text(missing) if any(missing.values()) else ""


def capi_carry_lacking(node, carry):
    """What ``node`` lacks of ``carry`` (capi.carry_missing: labels, taints), or None when
    there is no such Node (not registered again yet)."""
    if not node:
        return None
    return capi.carry_missing(node, carry)


class FilterModule(object):
    def filters(self):
        return {"capi_sync_wave_errors": capi_sync_wave_errors, "capi_rollout_plan": capi_rollout_plan,
                "capi_lock_name": capi_lock_name, "capi_steps_result": capi_steps_result,
                "capi_carry_missing": capi_carry_missing, "capi_carry_lacking": capi_carry_lacking, "capi_carry_text": capi.carry_text,
                "capi_remediation_workflows": capi_remediation_workflows,
                "capi_workflow_guard_message": capi_workflow_guard_message}
