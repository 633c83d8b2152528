# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of runbook 001's spread of CoreDNS and the ingress (see module_utils/spread.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.k8s_ha.plugins.module_utils.spread import (
    component_placement,
    expected_placement,
    fields_rollback,
    managers_last,
    overlay_fields,
    placement_checks,
    rollback_order,
    rollback_steps,
    spread_fields,
    stray_pods,
)


def _spread_fields(component, deployment, lane, lane_values=None, tolerate=True):
    try:
        return spread_fields(component, deployment, lane, lane_values, tolerate)
    except (KeyError, ValueError) as e:
        raise AnsibleFilterError("spread_fields: %s" % (e,))


class FilterModule(object):
    def filters(self):
        return {"spread_fields": _spread_fields, "rollback_order": rollback_order,
                "component_placement": component_placement, "stray_pods": stray_pods,
                "fields_rollback": fields_rollback, "placement_checks": placement_checks,
                "rollback_steps": rollback_steps, "managers_last": managers_last,
                "expected_placement": expected_placement, "overlay_fields": overlay_fields}
