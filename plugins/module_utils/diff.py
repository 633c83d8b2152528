# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure helpers for differences between two states of an object.

``DifferenceTracker`` records named fields with their before and after values and
feeds both a module's ``changed`` and its ``diff``, so the two can never disagree.
``merge_patch`` computes an RFC 7386 JSON merge patch between two objects.
No I/O here: everything is unit-tested without a cluster.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy


class DifferenceTracker(object):
    """Collect (field, before, after) triples; only real differences count."""

    def __init__(self):
        self._fields = []

    def add(self, name, before, after):
        """Record ``name``; return True when ``before`` and ``after`` differ."""
        if before == after:
            return False
        self._fields.append((name, copy.deepcopy(before), copy.deepcopy(after)))
        return True

    @property
    def has_difference(self):
        return bool(self._fields)

    @property
    def changed_fields(self):
        return [name for name, _before, _after in self._fields]

    def get_before(self):
        return dict((name, before) for name, before, _after in self._fields)

    def get_after(self):
        return dict((name, after) for name, _before, after in self._fields)

    def get_diff(self):
        """A diff as Ansible's callback shows it: {'before': ..., 'after': ...}."""
        return {"before": self.get_before(), "after": self.get_after()}


def merge_patch(before, after):
    """The RFC 7386 merge patch that turns ``before`` into ``after``.

    Keys missing from ``after`` become ``None`` (delete); lists and scalars are
    replaced whole. Returns ``{}`` when the two are equal."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        raise TypeError("merge_patch needs two dicts")
    patch = {}
    for key in before:
        if key not in after:
            patch[key] = None
    for key, value in after.items():
        old = before.get(key, _MISSING)
        if old == value:
            continue
        if isinstance(old, dict) and isinstance(value, dict):
            sub = merge_patch(old, value)
            if sub:
                patch[key] = sub
        else:
            patch[key] = copy.deepcopy(value)
    return patch


_MISSING = object()
