# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""I/O adapter of longhorn_settings: validate, one LIST, a patch per changed setting."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.homelab.k8s_ha.plugins.module_utils.kube import (
    ConflictRetriesExhausted,
    ObjectNotFound,
)
from ansible_collections.homelab.k8s_ha.plugins.module_utils.longhorn import (
    DETACHED_ONLY,
    LONGHORN_API,
    missing_namespace,
    settings_changes,
    validate,
)

KIND, API_VERSION = "Setting", LONGHORN_API
# Seconds to wait for Longhorn to apply a setting to its components (it restarts them).
APPLY_TIMEOUT = 300


def _raw(value):
    """A value as the string it would be written as, valid or not."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "%s" % (value,)


def webhook_verdicts(module, values, namespace, existing):
    """Longhorn's own answer (a server-side dry run, so its webhook runs) for each value of
    an existing setting: name -> refusal message, for those refused."""
    out = {}
    for name, value in sorted(values.items()):
        if name in existing:
            refused = module.dry_run_patch(KIND, API_VERSION, name, {"value": value},
                                           namespace=namespace)
            if refused:
                out[name] = refused
    return out


def run_longhorn_settings(module):
    wanted = module.params["settings"]
    namespace = module.params["namespace"]
    errors = validate(wanted)
    current = dict((s["metadata"]["name"], s.get("value", ""))
                   for s in module.list(KIND, API_VERSION, namespace=namespace))
    if not current and not module.namespace_exists(namespace):
        # an install always has its settings: none at all may be a namespace that does not exist
        module.fail_json(msg=missing_namespace("namespace", namespace))
    if errors:
        # ours first; Longhorn's webhook says it in its own words (dry run, no write)
        bad = dict((k, _raw(v)) for k, v in wanted.items()
                   if any(e.startswith(k + ":") for e in errors))
        said = webhook_verdicts(module, bad, namespace, current)
        module.fail_json(msg="settings: " + "; ".join(errors) + "".join(
            " | Longhorn's webhook refuses %s: %s" % (k, v) for k, v in sorted(said.items())),
            webhook=said)
    try:
        changes, tracker, rollback = settings_changes(current, wanted)
    except KeyError as e:
        module.fail_json(msg="settings: %s in namespace %s" % (e.args[0], namespace))
    # Every change through the webhook as a dry run before the first write: a value
    # Longhorn refuses leaves every setting as it was, not some of them changed.
    refused = webhook_verdicts(module, changes, namespace, current)
    if refused:
        module.fail_json(msg="settings: nothing was changed; Longhorn refuses " + "; ".join(
            "%s: %s" % (k, v) for k, v in sorted(refused.items())), webhook=refused,
            rollback={})

    # A setting Longhorn applies only while every volume is detached: refused, before any
    # write, while one is attached (see longhorn.DETACHED_ONLY).
    waiting = [n for n in sorted(changes) if n in DETACHED_ONLY]
    if waiting:
        attached = attached_volumes(module, namespace)
        if attached:
            module.fail_json(
                msg="settings: nothing was changed; Longhorn applies %s to its components only while "
                    "every volume is detached (longhorn-manager's setting controller), and %d volume(s) "
                    "are not: %s. Detach them first (stop the workloads that mount them), or leave %s as it is"
                    % (", ".join(waiting), len(attached), ", ".join(attached), ", ".join(waiting)),
                attached=attached, rollback={})

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
    for name in waiting:
        if not module.check_mode:
            wait_applied(module, name, namespace, applied, rollback)
    module.exit_with(tracker, settings=dict(current, **applied), rollback=rollback)


def attached_volumes(module, namespace):
    """Volumes whose state is not ``detached``, as ``name (state)``; longhorn-manager's
    AreAllVolumesDetachedState counts the same."""
    return ["%s (%s)" % (v["metadata"]["name"], (v.get("status") or {}).get("state") or "no state")
            for v in module.list("Volume", API_VERSION, namespace=namespace)
            if (v.get("status") or {}).get("state") != "detached"]


def wait_applied(module, name, namespace, applied, rollback):
    """Until Longhorn says it applied setting ``name`` (``status.applied``, Longhorn 1.9 and
    later; a Setting without a status field is taken as applied), at most
    APPLY_TIMEOUT seconds."""
    deadline = time.monotonic() + APPLY_TIMEOUT
    while True:
        obj = module.get(KIND, API_VERSION, name, namespace=namespace) or {}
        status = obj.get("status")
        if status is None or "applied" not in status or status.get("applied") is True:
            return
        left = deadline - time.monotonic()
        if left <= 0:
            module.fail_json(
                msg="settings: %s was written, but Longhorn did not apply it within %d s (status.applied "
                    "is false); the rollback puts the prior value back" % (name, APPLY_TIMEOUT),
                applied=applied, rollback=rollback)
        module.wait_for_change(KIND, API_VERSION, (obj.get("metadata") or {}).get("resourceVersion"),
                               min(left, 10), namespace=namespace, name=name)
