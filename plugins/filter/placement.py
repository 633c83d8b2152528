# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters over the placement audit's DaemonSet coverage (see module_utils/placement.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.k8s_ha.plugins.module_utils.placement import (
    longhorn_dropped,
    longhorn_toleration_changes,
    toleration_changes,
    unkept,
)


def _toleration_changes(rows, node_agents):
    try:
        return toleration_changes(rows or [], node_agents)
    except ValueError as e:
        raise AnsibleFilterError("daemonset_toleration_changes: %s" % (e,))


def _unkept(rows, node_agents, longhorn_kept=False):
    try:
        return unkept(rows or [], node_agents, bool(longhorn_kept))
    except ValueError as e:
        raise AnsibleFilterError("daemonsets_unkept: %s" % (e,))


def _longhorn_changes(rows, settings, taint):
    try:
        return longhorn_toleration_changes(rows or [], settings or [], [taint])
    except (ValueError, KeyError) as e:
        raise AnsibleFilterError("longhorn_toleration_changes: %s" % (e,))


class FilterModule(object):
    def filters(self):
        return {"daemonset_toleration_changes": _toleration_changes, "daemonsets_unkept": _unkept,
                "longhorn_toleration_changes": _longhorn_changes, "longhorn_dropped": longhorn_dropped}
