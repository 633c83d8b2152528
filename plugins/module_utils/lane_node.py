# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""I/O adapter of lane_node: validate, read, patch with resourceVersion, report."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.homelab.k8s_ha.plugins.module_utils.kube import (
    ConflictRetriesExhausted,
    ObjectNotFound,
)
from ansible_collections.homelab.k8s_ha.plugins.module_utils.lane import (
    desired_node,
    lane_state,
    validate,
)


def run_lane_node(module):
    params = module.params
    errors = validate(params.get("labels"), params.get("taints"))
    if errors:
        module.fail_json(msg="; ".join(errors))
    name = params["name"]
    outcome = {}

    def mutate(node):
        new, tracker, rollback = desired_node(
            node, labels=params.get("labels"), taints=params.get("taints"),
            taints_state=params["taints_state"], cordon=params.get("cordon"))
        outcome.update(tracker=tracker, rollback=rollback)
        return new

    try:
        before, after = module.update("Node", "v1", name, mutate)
    except ObjectNotFound:
        names = sorted(n["metadata"]["name"] for n in module.list("Node"))
        module.fail_json(msg="name: no node named %r; nodes are: %s" % (name, ", ".join(names)))
    except ConflictRetriesExhausted as e:
        module.fail_json(msg=str(e))
    module.exit_with(outcome["tracker"], before=lane_state(before), node=lane_state(after),
                     rollback=outcome["rollback"])
