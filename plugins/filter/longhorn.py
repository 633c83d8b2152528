# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of runbook 001's volume replica counts, one module call per batch of volumes
(see module_utils/longhorn_volumes.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.k8s_ha.plugins.module_utils.longhorn_volumes import (
    batches,
    merge_results,
    step_label,
)


def _volume_batches(steps, concurrency=1):
    try:
        return batches(steps, concurrency)
    except (TypeError, ValueError) as e:
        raise AnsibleFilterError("volume_batches: %s" % (e,))


class FilterModule(object):
    def filters(self):
        return {"volume_batches": _volume_batches, "volume_step_label": step_label,
                "volume_results": merge_results}
