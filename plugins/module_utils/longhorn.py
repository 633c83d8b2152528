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
import re

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
    # Tolerations of Longhorn's system-managed components (CSI plugin, engine image,
    # instance managers...), as "key=value:effect;key:effect"
    "taint-toleration": ("tolerations", None, False),
}

# Settings Longhorn applies to its components only while every volume is detached
# (longhorn-manager's setting controller, updateTaintToleration: "failed to apply ...
# when there are attached volumes. It will be eventually applied"). Longhorn 1.10 stores
# such a change at once and applies it later, at the first moment no volume is attached;
# Longhorn up to 1.5 refused it. This collection refuses it while a volume is attached:
# a change that lands at an unknown later time is not one a plan can promise.
DETACHED_ONLY = ("taint-toleration",)

TOLERATION_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
# A data-engine-specific setting's JSON holds a string for each engine its default lists
# (longhorn-manager types.ParseDataEngineSpecificSetting: "mismatched data engines").
DATA_ENGINES = ("v1", "v2")
_GO_INT = re.compile(r"^[+-]?[0-9]+$")
# Where Longhorn's chart and manifest install it.
DEFAULT_NAMESPACE = "longhorn-system"
# The API group and version of Longhorn's objects (Setting, Volume, Replica, Engine, Node).
LONGHORN_API = "longhorn.io/v1beta2"
# The name of Longhorn's CSI driver (a Longhorn volume's PV spec.csi.driver).
LONGHORN_CSI = "driver.longhorn.io"


def missing_namespace(option, namespace):
    """The message for a Longhorn namespace (option ``option``) that does not exist. A
    namespace that does not exist lists as empty, so without it a module found nothing to
    change and succeeded."""
    return ("%s: no namespace %s; give the namespace Longhorn is installed in (%s by default; "
            "kubectl get settings.longhorn.io -A shows it)" % (option, namespace, DEFAULT_NAMESPACE))


def go_int(text, trim=True):
    """An integer as longhorn-manager reads one (parseSettingSingleInt: strings.TrimSpace,
    then strconv.ParseInt(value, 10, 64)): an optional sign and ASCII digits, no
    underscores, within int64; a per-engine JSON value is not trimmed. Raise ValueError."""
    if trim:
        text = text.strip()
    if not _GO_INT.fullmatch(text):  # fullmatch: "$" alone would let a trailing newline through
        raise ValueError(text)
    number = int(text)
    if not -(1 << 63) <= number < (1 << 63):
        raise ValueError(text)
    return number


def parse_tolerations(name, text):
    """The tolerations of a taint-toleration value, as Longhorn's types.UnmarshalTolerations
    reads it (spaces removed, ``;`` between tolerations, ``key=value:effect`` or
    ``key:effect``), each ``(key, operator, value, effect)``; raise ValueError.

    Stricter than Longhorn 1.10: an effect is required, and a key with ``kubernetes.io`` in
    it is refused (as Longhorn's earlier ValidateAndUnmarshalToleration did: those keys are
    Kubernetes' own default tolerations)."""
    text = text.replace(" ", "")
    out = []
    if not text:
        return out
    for part in text.split(";"):
        pieces = part.split(":")
        if len(pieces) != 2:
            raise ValueError("%s: %r is not key=value:effect or key:effect" % (name, part))
        pair, effect = pieces
        if effect not in TOLERATION_EFFECTS:
            raise ValueError("%s: %r has effect %r; allowed: %s" % (name, part, effect, ", ".join(TOLERATION_EFFECTS)))
        key, eq, value = pair.partition("=")
        if not key or "=" in value:
            raise ValueError("%s: %r is not key=value:effect or key:effect" % (name, part))
        if "kubernetes.io" in key:
            raise ValueError("%s: %r: a key may not contain kubernetes.io (Kubernetes' default tolerations)"
                             % (name, part))
        out.append((key, "Equal" if eq else "Exists", value, effect))
    return out


def tolerations_text(tolerations):
    """``(key, operator, value, effect)`` tuples as a taint-toleration value."""
    return ";".join("%s%s:%s" % (k, "=" + v if op == "Equal" else "", e) for k, op, v, e in tolerations)


def with_toleration(value, taint):
    """The taint-toleration ``value`` with a toleration of exactly ``taint`` (a node taint:
    key, value, effect) added, unless one it holds tolerates it already; the rest as it was."""
    have = parse_tolerations("taint-toleration", value or "")
    for k, op, v, e in have:
        if k == taint["key"] and e == taint["effect"] and (op == "Exists" or v == (taint.get("value") or "")):
            return value or ""
    want = (taint["key"], "Equal" if taint.get("value") else "Exists", taint.get("value") or "", taint["effect"])
    return tolerations_text(have + [want])


def _scalar(name, value, trim=True):
    """The meaning of one scalar value of setting ``name``, or raise ValueError."""
    kind, constraint, _per_engine = KNOWN_SETTINGS[name]
    text = value if isinstance(value, str) else json.dumps(value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if text.strip().lower() in ("true", "false"):
            return text.strip().lower() == "true"
        raise ValueError("%s: %r is not a boolean (true or false)" % (name, value))
    if kind == "tolerations":
        if not isinstance(value, str):
            raise ValueError("%s: %r is not a string such as key=value:NoSchedule;key2:NoExecute" % (name, value))
        return frozenset(parse_tolerations(name, value))
    if kind == "int":
        if isinstance(value, bool):
            raise ValueError("%s: %r is not an integer" % (name, value))
        try:
            number = go_int("%d" % value) if isinstance(value, int) else go_int(text, trim)
        except ValueError:
            raise ValueError("%s: %r is not an integer (an optional sign and digits, as Longhorn parses it)"
                             % (name, value))
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
    trim = True
    if per_engine and isinstance(value, str) and value.strip().startswith("{"):
        try:
            engines = json.loads(value)
        except ValueError:
            raise ValueError("%s: %r is neither a value nor per-engine JSON" % (name, value))
        if not isinstance(engines, dict) or any(not isinstance(v, str) for v in engines.values()):
            raise ValueError("%s: %r: per-engine JSON holds a string for each engine, as Longhorn reads it"
                             " (%s)" % (name, value, json.dumps(dict((e, "2") for e in DATA_ENGINES))))
        value, trim = engines, False  # Longhorn does not trim the values inside the JSON
    if isinstance(value, dict):
        if not per_engine:
            raise ValueError("%s: takes one value, not one per data engine" % name)
        if sorted(value) != sorted(DATA_ENGINES):
            raise ValueError("%s: a value for each data engine, %s (Longhorn refuses mismatched data engines);"
                             " got %s" % (name, " and ".join(DATA_ENGINES), ", ".join(sorted(value)) or "none"))
        values = set(_scalar(name, v, trim) for v in value.values())
        if len(values) == 1:
            return values.pop()  # the same on every engine: means that value
        return dict((k, _scalar(name, v, trim)) for k, v in value.items())
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
