# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the long-running modules of runbook 004 share: timed progress events, a failure
that carries them, duration options, one ``DifferenceTracker`` for ``changed`` and
``diff``, and a wait that renews the rollout lock while it polls."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.homelab.k8s_ha.plugins.module_utils.cluster_lock import LockLost
from ansible_collections.homelab.k8s_ha.plugins.module_utils.diff import DifferenceTracker
from ansible_collections.homelab.k8s_ha.plugins.module_utils.linstor import duration_seconds


class Steps(object):
    def __init__(self, module, sleep=time.sleep):
        self.m = module
        self.p = module.params
        self.sleep = sleep
        self.start = time.monotonic()
        self.events = []
        self.tracker = DifferenceTracker()
        self.lock = None  # a cluster_lock.Lock, renewed by wait()

    def say(self, event, **fields):
        fields.update(t=round(time.monotonic() - self.start, 1), event=event)
        self.events.append(fields)

    def fail(self, msg, **fields):
        fields["events"] = self.events
        self.m.fail_json(msg=msg, **fields)

    def seconds(self, option):
        try:
            return duration_seconds(self.p[option], option)
        except ValueError as e:
            self.fail("%s" % e)

    def wait(self, what, read, done, timeout, describe=None):
        """Poll ``read()`` until ``done(value)`` or ``timeout`` seconds: ``(ok, value)``.
        Each new ``describe(value)`` is a progress event; the lock is renewed between
        polls, and a lost lock fails the module naming the wait."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            value = read()
            if describe is not None:
                summary = describe(value)
                if summary != last:
                    self.say("%s: %s" % (what, summary))
                    last = summary
            if done(value):
                return True, value
            if time.monotonic() >= deadline:
                return False, value
            try:
                if self.lock is not None:
                    self.lock.keep()
            except LockLost as e:
                self.fail("%s; stopped while waiting for %s" % (e, what))
            self.sleep(min(self.p["poll_interval"], max(0.05, deadline - time.monotonic())))

    def exit(self, result):
        result["changed"] = self.tracker.has_difference
        result["events"] = self.events
        if self.m.diff_mode:
            result["diff"] = self.tracker.get_diff()
        self.m.exit_json(**result)
