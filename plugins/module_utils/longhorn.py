# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Longhorn settings, pure: known types, validation, and comparison by meaning.

``settings.longhorn.io/v1beta2`` objects carry a string ``value``. From Longhorn 1.10
the webhook stores data-engine specific settings such as ``default-replica-count`` as
JSON per engine (``"2"`` is stored as ``{"v1":"2","v2":"2"}``), so a naive string
comparison reports a change on every run. Here values are compared by what they mean.
No I/O.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.homelab.k8s_ha.plugins.module_utils.diff import DifferenceTracker

# name -> (type, constraint, per data engine). type: int (constraint (min, max), max
# may be None), bool, or enum (constraint: the allowed values).
KNOWN_SETTINGS = {
    "default-replica-count": ("int", (1, 20), True),
    "replica-soft-anti-affinity": ("bool", None, False),
    "replica-auto-balance": ("enum", ("disabled", "least-effort", "best-effort"), False),
    "replica-replenishment-wait-interval": ("int", (0, None), False),
    "concurrent-replica-rebuild-per-node-limit": ("int", (0, None), False),
    "node-drain-policy": ("enum", ("block-if-contains-last-replica", "block-for-eviction",
                                   "block-for-eviction-if-contains-last-replica",
                                   "allow-if-replica-is-stopped", "always-allow"), False),
}


def _scalar(name, value):
    """The meaning of one scalar value of setting ``name``, or raise ValueError."""
    kind, constraint, _per_engine = KNOWN_SETTINGS[name]
    text = value if isinstance(value, str) else json.dumps(value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if text.strip().lower() in ("true", "false"):
            return text.strip().lower() == "true"
        raise ValueError("%s: %r is not a boolean (true or false)" % (name, value))
    if kind == "int":
        if isinstance(value, bool):
            raise ValueError("%s: %r is not an integer" % (name, value))
        try:
            number = int(text.strip())
        except ValueError:
            raise ValueError("%s: %r is not an integer" % (name, value))
        low, high = constraint
        if number < low or (high is not None and number > high):
            allowed = "%d to %d" % (low, high) if high is not None else "%d or more" % low
            raise ValueError("%s: %d is out of range; allowed: %s" % (name, number, allowed))
        return number
    if text not in constraint:
        raise ValueError("%s: %r is not allowed; allowed: %s" % (name, value, ", ".join(constraint)))
    return text


def meaning(name, value):
    """What a value of setting ``name`` means, comparable across storage forms.

    A per-engine setting means {engine: value}; a plain value means the same for every
    engine and compares equal to a per-engine map whose engines all hold it."""
    if name not in KNOWN_SETTINGS:
        raise ValueError("%s: not a setting this module knows; known: %s"
                         % (name, ", ".join(sorted(KNOWN_SETTINGS))))
    per_engine = KNOWN_SETTINGS[name][2]
    if per_engine and isinstance(value, str) and value.strip().startswith("{"):
        try:
            engines = json.loads(value)
        except ValueError:
            raise ValueError("%s: %r is neither a value nor per-engine JSON" % (name, value))
        value = engines
    if isinstance(value, dict):
        if not per_engine:
            raise ValueError("%s: takes one value, not one per data engine" % name)
        values = set(_scalar(name, v) for v in value.values())
        if len(values) == 1:
            return values.pop()  # the same on every engine: means that value
        return dict((k, _scalar(name, v)) for k, v in value.items())
    return _scalar(name, value)


def as_stored(name, value):
    """The string written to ``value`` for a wanted value (the webhook normalises it).

    A valid string is written as given, so a rollback puts back exactly what was stored
    (per-engine JSON included); other values are converted."""
    mean = meaning(name, value)
    if isinstance(value, str):
        return value
    if isinstance(mean, bool):
        return "true" if mean else "false"
    if isinstance(mean, dict):
        return json.dumps(dict((k, as_stored(name, v)) for k, v in mean.items()), sort_keys=True)
    return str(mean)


def validate(wanted):
    """Every problem with the wanted settings, as messages naming setting and allowed values."""
    errors = []
    for name in sorted(wanted):
        try:
            meaning(name, wanted[name])
        except ValueError as e:
            errors.append(str(e))
    return errors


def settings_changes(current, wanted):
    """(changes, tracker, rollback) for ``wanted`` against the ``current`` stored values.

    ``current``: setting name -> stored string value. ``changes``: name -> the string to
    write, only where the meaning differs. ``rollback``: name -> the stored value before."""
    tracker = DifferenceTracker()
    changes, rollback = {}, {}
    for name in sorted(wanted):
        if name not in current:
            raise KeyError("%s: no such Setting object in the cluster" % name)
        before = current[name]
        if meaning(name, before) == meaning(name, wanted[name]):
            continue
        changes[name] = as_stored(name, wanted[name])
        rollback[name] = before
        tracker.add(name, before, changes[name])
    return changes, tracker, rollback
