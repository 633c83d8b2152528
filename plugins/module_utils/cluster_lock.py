# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""I/O of the cluster lock: read, create, replace and delete the Lease, as the pure
``lease`` rules decide. ``Lock`` is used by module cluster_lock (acquire, release)
and by the modules that wait a long time (``keep()`` renews the Lease while they
poll, and stops them when the lock was lost)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import time

from ansible_collections.homelab.k8s_ha.plugins.module_utils import lease as rules
from ansible_collections.homelab.k8s_ha.plugins.module_utils.kube import ConflictError, NotFoundError

LEASE = ("Lease", "coordination.k8s.io/v1")
LOCK_OPTIONS = dict(
    name=dict(type="str", required=True),
    namespace=dict(type="str", required=True),
    holder=dict(type="str", required=True),
    duration_seconds=dict(type="int", default=300),
)


class LockLost(Exception):
    """Another holder has the Lease now, or it is gone: stop before the next step."""


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


class Lock(object):
    def __init__(self, module, name, namespace, holder, duration, now=utcnow, sleep=time.sleep):
        if duration < 15:
            module.fail_json(msg="duration_seconds: %s is too short; use 15 or more" % duration)
        if not holder:
            module.fail_json(msg="holder: must not be empty")
        self.m, self.name, self.namespace = module, name, namespace
        self.holder, self.duration = holder, duration
        self.now, self.sleep = now, sleep
        self.renewed = None

    def read(self):
        return self.m.get(LEASE[0], LEASE[1], self.name, namespace=self.namespace)

    def _body(self, lease, action):
        meta = {"name": self.name, "namespace": self.namespace,
                "labels": {"app.kubernetes.io/managed-by": "homelab.k8s_ha"}}
        if lease is not None:
            meta = dict(lease["metadata"])
        return {"apiVersion": LEASE[1], "kind": LEASE[0], "metadata": meta,
                "spec": rules.held_spec(lease, self.holder, self.duration, self.now(), action)}

    def _take(self, lease, action):
        """One create/replace; True when it is ours, False when another run won (409)."""
        body = self._body(lease, action)
        try:
            self.m.write("create" if action == "create" else "replace", LEASE[0], LEASE[1],
                         body, namespace=self.namespace)
        except ConflictError:
            return False
        except NotFoundError:
            if action == "create":
                # a create is refused with 404 only when its namespace does not exist: no
                # retry could succeed, so fail at once instead of asking again and again
                self.m.fail_json(msg="Cannot take the lock %s/%s: namespace %s does not exist (HTTP 404 on "
                                     "create). Create it, or give the lock a namespace that exists; nothing "
                                     "was written." % (self.namespace, self.name, self.namespace),
                                 lease=self.name)
            return False  # deleted between our read and our replace
        self.renewed = self.now()
        return True

    def acquire(self, wait_timeout=0, poll=2.0, events=None):
        """Hold the lock. Returns ``(action, detail)``; ``action`` is create, renew or
        takeover, or in check mode what it would be (``wait`` when another holds it).
        Fails the module with a message naming the holder when it stays held."""
        start = self.now()
        events = events if events is not None else []
        while True:
            lease = self.read()
            action, detail = rules.decide(lease, self.holder, self.now())
            if self.m.check_mode:
                return action, detail
            if action != "wait":
                if self._take(lease, action):
                    return action, detail
                events.append({"t": round((self.now() - start).total_seconds(), 1),
                               "event": "lost the race (HTTP 409), reading again"})
                continue
            waited = (self.now() - start).total_seconds()
            if waited >= wait_timeout:
                self.m.fail_json(msg=rules.wait_message(self.name, self.namespace, detail)
                                 + ("" if not wait_timeout else " (waited %.0f s)" % waited),
                                 holder=detail["holder"], lease=self.name, events=events)
            if not events or events[-1].get("holder") != detail["holder"]:
                events.append({"t": round(waited, 1), "event": "waiting for the lock", "holder": detail["holder"]})
            self.sleep(min(poll, max(0.1, wait_timeout - waited)))

    def keep(self):
        """Renew the Lease when a third of its duration has passed; raise LockLost when
        it is no longer ours. Does nothing in check mode (nothing was taken)."""
        if self.m.check_mode:
            return
        now = self.now()
        if not rules.due(self.renewed, now, self.duration):
            return
        lease = self.read()
        holder = ((lease or {}).get("spec") or {}).get("holderIdentity")
        if lease is None or holder != self.holder:
            raise LockLost("the lock %s/%s is %s" % (
                self.namespace, self.name, "gone" if lease is None else "held by %s now" % holder))
        if not self._take(lease, "renew"):
            raise LockLost("the lock %s/%s changed under us (HTTP 409 on renew)" % (self.namespace, self.name))

    def release(self):
        """Delete the Lease if it is ours. Returns ``(released, holder_now)``."""
        lease = self.read()
        if lease is None:
            return False, None
        holder = (lease.get("spec") or {}).get("holderIdentity")
        if holder != self.holder:
            return False, holder
        if self.m.check_mode:
            return True, holder
        try:
            self.m.write("delete", LEASE[0], LEASE[1], name=self.name, namespace=self.namespace,
                         resource_version=lease["metadata"]["resourceVersion"])
        except ConflictError:
            return False, ((self.read() or {}).get("spec") or {}).get("holderIdentity")
        except NotFoundError:
            return False, None
        return True, holder


def lock_from(module, option="lock"):
    """The ``lock`` option of a waiting module as a ``Lock``, or None. The lock must
    be ours already (taken by module cluster_lock): else the module fails before
    doing anything."""
    spec = module.params.get(option)
    if not spec:
        return None
    lock = Lock(module, spec["name"], spec["namespace"], spec["holder"], spec.get("duration_seconds") or 300)
    if module.check_mode:
        return lock
    try:
        lock.keep()  # never renewed yet: due at once, so this reads the Lease and renews it
    except LockLost as e:
        module.fail_json(msg="%s: %s; nothing was done" % (option, e))
    return lock


def run_cluster_lock(m):
    p = m.params
    try:
        name = p["name"] or rules.lock_name(p["namespace"], p["cluster"])
    except ValueError as e:
        m.fail_json(msg="%s" % e)
    ns = p["lease_namespace"] or p["namespace"]
    if not ns:
        m.fail_json(msg="lease_namespace: required when namespace is not given")
    lock = Lock(m, name, ns, p["holder"], p["duration_seconds"])
    events = []
    result = {"lease": {"name": name, "namespace": ns}, "holder": p["holder"], "events": events}
    if p["state"] == "absent":
        released, holder = lock.release()
        result.update(changed=released, action="release" if released else "none", holder_now=holder)
        if holder and not released:
            result["warning"] = "the lock is held by %s, not by %s: left alone" % (holder, p["holder"])
            m.ansible.warn(result["warning"])
        m.exit_json(**result)
    action, detail = lock.acquire(p["wait_timeout"], p["poll_interval"], events)
    result.update(action=action, previous_holder=detail.get("previous"), changed=action != "renew")
    if action == "takeover":
        events.append({"event": "took the lock over", "why": detail["why"]})
    if action == "wait":  # check mode only
        result["changed"] = False
        result["held_by"] = detail["holder"]
        m.ansible.warn(rules.wait_message(name, ns, detail))
    if m.diff_mode:
        before = {"create": None, "renew": p["holder"], "takeover": detail.get("previous"),
                  "wait": detail.get("holder")}[action]
        result["diff"] = {"before": {"holder": before},
                          "after": {"holder": before if action == "wait" else p["holder"]}}
    m.exit_json(**result)
