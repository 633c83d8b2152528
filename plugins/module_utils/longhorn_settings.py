# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""I/O adapter of longhorn_settings: validate, one LIST, a patch per changed setting."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.homelab.k8s_ha.plugins.module_utils.kube import (
    ConflictRetriesExhausted,
    ObjectNotFound,
)
from ansible_collections.homelab.k8s_ha.plugins.module_utils.longhorn import (
    settings_changes,
    validate,
)

KIND, API_VERSION = "Setting", "longhorn.io/v1beta2"


def run_longhorn_settings(module):
    wanted = module.params["settings"]
    namespace = module.params["namespace"]
    errors = validate(wanted)
    if errors:
        module.fail_json(msg="settings: " + "; ".join(errors))
    current = dict((s["metadata"]["name"], s.get("value", ""))
                   for s in module.list(KIND, API_VERSION, namespace=namespace))
    try:
        changes, tracker, rollback = settings_changes(current, wanted)
    except KeyError as e:
        module.fail_json(msg="settings: %s in namespace %s" % (e.args[0], namespace))

    applied = {}
    for name, value in sorted(changes.items()):
        def mutate(obj, value=value):
            obj["value"] = value
            return obj
        try:
            _before, after = module.update(KIND, API_VERSION, name, mutate, namespace=namespace)
        except (ConflictRetriesExhausted, ObjectNotFound) as e:
            module.fail_json(msg=str(e), applied=applied, rollback=rollback)
        applied[name] = after.get("value")
    module.exit_with(tracker, settings=dict(current, **applied), rollback=rollback)
