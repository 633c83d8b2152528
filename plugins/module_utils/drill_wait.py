# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""I/O of module drill_wait: read the node or the workloads' pods every poll_interval
until the pure ``active_passive.drill_observe`` says the condition is met, keeping only
the reads that changed the state (``active_passive.Transitions``)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.homelab.k8s_ha.plugins.module_utils.active_passive import (
    Transitions,
    drill_observe,
)
from ansible_collections.homelab.k8s_ha.plugins.module_utils.scheduling import field

NODE_CONDITIONS = ("node_not_ready", "node_ready")


def _workloads(module):
    out, missing = [], []
    for i, w in enumerate(module.params["workloads"]):
        if not w.get("namespace") or not w.get("name"):
            module.fail_json(msg="workloads[%d]: namespace and name are required" % i)
        d = module.get("Deployment", "apps/v1", w["name"], namespace=w["namespace"])
        if d is None:
            missing.append("%s/%s" % (w["namespace"], w["name"]))
        elif not field(d, "spec", "selector", "matchLabels"):
            module.fail_json(msg="workloads: %s/%s has no spec.selector.matchLabels" % (w["namespace"], w["name"]))
        else:
            out.append(d)
    if missing:
        module.fail_json(msg="workloads: no Deployment %s" % ", ".join(missing))
    return out


def run_drill_wait(module, clock=time.monotonic, wall=time.time, sleep=time.sleep):
    p = module.params
    condition, name = p["condition"], p["node"]
    if p["timeout"] <= 0 or p["poll_interval"] <= 0:
        module.fail_json(msg="timeout and poll_interval: both must be above 0 (got %s and %s)"
                         % (p["timeout"], p["poll_interval"]))
    workloads = []
    if condition not in NODE_CONDITIONS:
        if not p["workloads"]:
            module.fail_json(msg="workloads: required for condition %s" % condition)
        workloads = _workloads(module)
    namespaces = sorted(set(w["metadata"]["namespace"] for w in workloads))
    what = p["label"] or condition
    seen = Transitions()
    start = clock()
    while True:
        if condition in NODE_CONDITIONS:
            met, text = drill_observe(condition, name, node=module.get("Node", "v1", name))
        else:
            pods = [x for ns in namespaces for x in module.list("Pod", "v1", namespace=ns)]
            met, text = drill_observe(condition, name, pods=pods, workloads=workloads)
        now, at = clock() - start, wall()
        seen.see(now, at, text)
        result = dict(changed=False, met=met, transitions=seen.items, lines=seen.lines(what),
                      state=text, elapsed=round(now, 1))
        if met:
            module.exit_json(reached_at=at, **result)
        if now >= p["timeout"]:
            module.fail_json(msg="%s: not met within %s s; the state since +%.1f s: %s"
                             % (what, p["timeout"], seen.items[-1]["t"], text), **result)
        sleep(min(p["poll_interval"], max(0.05, p["timeout"] - now)))
