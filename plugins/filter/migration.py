# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of runbook 002: strategies B and C (module_utils/strategies.py) and the
cutover window's holds (module_utils/migration.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.k8s_ha.plugins.module_utils.migration import app_ref, hold_text, window_holds
from ansible_collections.homelab.k8s_ha.plugins.module_utils.strategies import (
    dual_deployments,
    hybrid_fields,
    sidecar_check,
    stage_handover,
)


def _dual_deployments(deployment, lane, role_label="role"):
    try:
        return dual_deployments(deployment, lane, role_label)
    except (KeyError, ValueError) as e:
        raise AnsibleFilterError("dual_deployments: %s" % (e,))


def _hybrid_fields(deployment, lane, sidecar):
    try:
        return hybrid_fields(deployment, lane, sidecar)
    except (KeyError, ValueError) as e:
        raise AnsibleFilterError("hybrid_fields: %s" % (e,))


def _stage_handover(workload, stage, replicas=1):
    try:
        return stage_handover(workload, "%s" % stage, replicas)
    except ValueError as e:
        raise AnsibleFilterError("stage_handover: %s" % (e,))


class FilterModule(object):
    def filters(self):
        return {"dual_deployments": _dual_deployments, "stage_handover": _stage_handover,
                "window_holds": window_holds, "hybrid_fields": _hybrid_fields,
                "sidecar_check": sidecar_check, "app_ref": app_ref, "hold_text": hold_text}
