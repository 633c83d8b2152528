# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""I/O adapter of workload_fields: validate, patch with resourceVersion, wait for the rollout."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.homelab.k8s_ha.plugins.module_utils.fields import (
    fields_change,
    get_field,
    rollout_state,
    validate,
)
from ansible_collections.homelab.k8s_ha.plugins.module_utils.kube import (
    ConflictRetriesExhausted,
    ObjectNotFound,
)


def run_workload_fields(module):
    p = module.params
    kind, api_version, ns, name, fields = (p["kind"], p["api_version"], p["namespace"], p["name"],
                                           p["fields"])
    errors = validate(fields)
    if errors:
        module.fail_json(msg="; ".join(errors))
    current = module.get(kind, api_version, name, namespace=ns)
    if current is None:
        names = sorted(o["metadata"]["name"] for o in module.list(kind, api_version, namespace=ns))
        module.fail_json(msg="name: no %s %s in namespace %s; there are: %s"
                         % (kind, name, ns, ", ".join(names) or "none"))
    errors = validate(fields, current)
    if errors:
        module.fail_json(msg="; ".join(errors))

    outcome = {}

    def mutate(obj):
        new, tracker, rollback = fields_change(obj, fields, p["compare"])
        outcome.update(tracker=tracker, rollback=rollback)
        return new
    try:
        before, after = module.update(kind, api_version, name, mutate, namespace=ns)
    except (ConflictRetriesExhausted, ObjectNotFound) as e:
        module.fail_json(msg=str(e))
    tracker = outcome["tracker"]
    result = dict(before=dict((f, get_field(before, f)) for f in sorted(fields)),
                  rollback=outcome["rollback"], events=[])
    if tracker.has_difference and not module.check_mode and p["wait"] and kind == "Deployment":
        t0 = time.monotonic()
        last = None
        while True:
            obj = module.get(kind, api_version, name, namespace=ns)
            state, text = rollout_state(obj)
            if text != last:
                result["events"].append({"t": round(time.monotonic() - t0, 1), "message": text})
                last = text
            if state == "done":
                break
            if time.monotonic() - t0 >= p["wait_timeout"]:
                module.fail_json(msg="%s/%s: rollout not done within wait_timeout %ss: %s"
                                 % (ns, name, p["wait_timeout"], text), **result)
            # the Deployment's status says how the rollout goes: read again when it changes
            module.wait_for_change(kind, api_version, obj["metadata"].get("resourceVersion"),
                                   p["poll_interval"], namespace=ns, name=name)
    result["after"] = dict((f, get_field(after, f)) for f in sorted(fields))
    module.exit_with(tracker, **result)
