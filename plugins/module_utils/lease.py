# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure rules of the cluster lock: a ``coordination.k8s.io/v1`` Lease per rollout key.

The runbook's Argo mutex ``capi-rollout-<namespace>-<cluster>`` lives in the Argo
controller; the equivalent here is a Lease of that name. It is taken by create; taken
over only when it has expired (``renewTime + leaseDurationSeconds`` in the past) or
has no holder; renewed by its holder; released by its holder only. Every write
carries the read ``resourceVersion``, so a 409 means another run got there first:
the lock is lost, never shared. No I/O here.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re

_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
MICRO = "%Y-%m-%dT%H:%M:%S.%fZ"


def lock_name(namespace, cluster, prefix="capi-rollout"):
    """``capi-rollout-<namespace>-<cluster>``; ValueError naming the bad field."""
    for field, value in (("namespace", namespace), ("cluster", cluster)):
        if not value or not _DNS1123.match("%s" % value):
            raise ValueError("%s: %r is not a DNS-1123 name (lower case letters, digits, '-', '.')"
                             % (field, value))
    name = "%s-%s-%s" % (prefix, namespace, cluster)
    if len(name) > 253:
        raise ValueError("the lock name %s is longer than 253 characters" % name)
    return name


def micro_time(when):
    return when.astimezone(datetime.timezone.utc).strftime(MICRO)


def parse_time(text):
    """A Lease MicroTime (or RFC 3339 time) as an aware datetime; None when absent."""
    if not text:
        return None
    text = text.replace("Z", "+00:00")
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        return datetime.datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(
            tzinfo=datetime.timezone.utc)


def expires_at(lease):
    """When the Lease's holder loses it unless it renews; None without a renew time."""
    spec = (lease or {}).get("spec") or {}
    renewed = parse_time(spec.get("renewTime") or spec.get("acquireTime"))
    if renewed is None:
        return None
    return renewed + datetime.timedelta(seconds=int(spec.get("leaseDurationSeconds") or 0))


def decide(lease, holder, now):
    """What to do to hold the lock: ``create`` (no Lease), ``renew`` (ours),
    ``takeover`` (expired or without holder) or ``wait`` (another live holder).

    Returns ``(action, detail)``; detail names the other holder and seconds left."""
    if lease is None:
        return "create", {}
    spec = lease.get("spec") or {}
    current = spec.get("holderIdentity")
    if current == holder:
        return "renew", {}
    if not current:
        return "takeover", {"previous": None, "why": "the Lease has no holder"}
    end = expires_at(lease)
    if end is None or end <= now:
        return "takeover", {"previous": current,
                            "why": "%s's Lease expired %s" % (current, micro_time(end) if end else "(no renew time)")}
    return "wait", {"holder": current, "seconds_left": round((end - now).total_seconds(), 1),
                    "expires": micro_time(end)}


def held_spec(lease, holder, duration, now, action):
    """The Lease spec after ``action`` (create/renew/takeover) by ``holder``."""
    spec = dict((lease or {}).get("spec") or {})
    stamp = micro_time(now)
    if action in ("create", "takeover"):
        spec["acquireTime"] = stamp
        spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if action == "takeover" else 0)
    spec["holderIdentity"] = holder
    spec["leaseDurationSeconds"] = int(duration)
    spec["renewTime"] = stamp
    return spec


def due(last_renew, now, duration):
    """A holder renews once a third of the duration has passed (as client-go's leader
    election does with its renew deadline)."""
    return last_renew is None or (now - last_renew).total_seconds() >= duration / 3.0


def wait_message(name, namespace, detail):
    return ("the lock %s/%s is held by %s until %s (%.0f s left); another rollout of this cluster is"
            " running. Wait for it, or once it has expired (a dead holder) run again to take it over"
            % (namespace, name, detail["holder"], detail["expires"], detail["seconds_left"]))
