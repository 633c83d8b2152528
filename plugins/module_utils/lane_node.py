# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""I/O adapter of lane_node: validate, read, patch with resourceVersion, report."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.homelab.k8s_ha.plugins.module_utils.kube import (
    ConflictRetriesExhausted,
    ObjectNotFound,
    given,
)
from ansible_collections.homelab.k8s_ha.plugins.module_utils.lane import (
    desired_node,
    lane_state,
    validate,
)


def run_lane_node(module):
    """One node (``name``), or each of ``nodes`` in one call (see K8sHaModule.run_each)."""
    params = module.params
    if params.get("nodes") is not None:
        nodes = [given(item) for item in params["nodes"]]
        for item in nodes:
            if item.get("taints"):
                item["taints"] = [given(t) for t in item["taints"]]
        # every node's input checked, and every node found, before the first write
        errors = ["nodes[%d] (%s): %s" % (i, item["name"], e) for i, item in enumerate(nodes)
                  for e in validate(item.get("labels"), item.get("taints"))]
        if errors:
            module.fail_json(msg="; ".join(errors))
        names = sorted(n["metadata"]["name"] for n in module.list("Node"))
        unknown = ["nodes[%d].name: no node named %r" % (i, item["name"])
                   for i, item in enumerate(nodes) if item["name"] not in names]
        if unknown:
            module.fail_json(msg="%s; nodes are: %s" % ("; ".join(unknown), ", ".join(names)))
        module.run_each("nodes", nodes, lambda item: _lane_node(module, item),
                        name=lambda item: item["name"])
    tracker, result = _lane_node(module, params)
    module.exit_with(tracker, **result)


def _lane_node(module, params):
    """One node: ``(tracker, result)``; bad input fails before any write."""
    errors = validate(params.get("labels"), params.get("taints"))
    if errors:
        module.fail_json(msg="; ".join(errors))
    name = params["name"]
    outcome = {}

    def mutate(node):
        new, tracker, rollback = desired_node(
            node, labels=params.get("labels"), taints=params.get("taints"),
            taints_state=params.get("taints_state") or "present", cordon=params.get("cordon"))
        outcome.update(tracker=tracker, rollback=rollback)
        return new

    try:
        before, after = module.update("Node", "v1", name, mutate)
    except ObjectNotFound:
        names = sorted(n["metadata"]["name"] for n in module.list("Node"))
        module.fail_json(msg="name: no node named %r; nodes are: %s" % (name, ", ".join(names)))
    except ConflictRetriesExhausted as e:
        module.fail_json(msg=str(e))
    return outcome["tracker"], dict(before=lane_state(before), node=lane_state(after),
                                    rollback=outcome["rollback"])
