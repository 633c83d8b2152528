# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""I/O adapter of longhorn_volume_replicas: read, plan, then per batch guard, patch, wait."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.homelab.k8s_ha.plugins.module_utils.kube import (
    ConflictError,
    ConflictRetriesExhausted,
    NotFoundError,
    ObjectNotFound,
)
from ansible_collections.homelab.k8s_ha.plugins.module_utils.longhorn import LONGHORN_API, missing_namespace
from ansible_collections.homelab.k8s_ha.plugins.module_utils.longhorn_volumes import (
    Watch,
    auto_balance,
    node_eligibility,
    plan,
    plan_lines,
    plan_tracker,
    rebuilds_disabled,
    rebuilds_in_flight,
    rebuilds_text,
    replica_count,
    select,
    validate,
    views,
)

API = LONGHORN_API


class Run(object):
    """One run of the module: what it read, what it did, and how to report it."""

    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.ns = self.p["namespace"]
        self.t0 = time.monotonic()
        self.events = []
        self.done = []
        self.rollback = {}
        self.balance_setting = "disabled"
        self.held = {}  # volume -> its replicaAutoBalance before the module held it off

    def log(self, volume, message):
        self.events.append({"t": round(time.monotonic() - self.t0, 1), "volume": volume,
                            "message": message})

    def read(self):
        m = self.module
        return (m.list("Volume", API, namespace=self.ns), m.list("Replica", API, namespace=self.ns),
                m.list("Engine", API, namespace=self.ns))

    def fail(self, msg, steps, stopped=None):
        self.release()
        self.module.fail_json(msg=msg, plan=steps, plan_lines=plan_lines(steps), done=self.done,
                              remaining=[s["volume"] for s in steps
                                         if s["changes"] and s["volume"] not in self.done],
                              stopped=stopped, rollback=self.rollback, events=self.events)

    def current(self):
        """Every volume's view as read now, and the rebuilds in flight."""
        volumes, replicas, engines = self.read()
        return (dict((v["name"], v) for v in views(volumes, replicas, engines)),
                rebuilds_in_flight(engines))

    def guard(self, volume_names):
        """Before a batch: no rebuild in flight anywhere, and each volume healthy.
        Returns the views read (the state before the patch) and the reason to stop."""
        current, busy = self.current()
        if busy:
            return current, rebuilds_text(busy)
        for name in volume_names:
            v = current.get(name)
            if v is None:
                return current, "volume %s is gone" % name
            if v["robustness"] != "healthy":
                return current, "%s is %s, not healthy" % (name, v["robustness"])
        return current, None

    def run(self):
        m, p = self.module, self.p
        by_volume = p["replicas_by_volume"]
        errors = validate(p["replicas"], p["pvcs"], p["concurrency"], p["wait_timeout"],
                          p["poll_interval"], by_volume)
        if errors:
            m.fail_json(msg="; ".join(errors))
        current, busy = self.current()
        settings = dict((s["metadata"]["name"], s.get("value", ""))
                        for s in m.list("Setting", API, namespace=self.ns))
        if not current and not settings and not m.namespace_exists(self.ns):
            # no volume and no setting: perhaps no such namespace, where there is nothing to change
            m.fail_json(msg=missing_namespace("namespace", self.ns))
        self.balance_setting = settings.get("replica-auto-balance", "disabled")
        eligibility = node_eligibility(m.list("Node", API, namespace=self.ns), m.list("Node"), settings,
                                       p["if_uncordoned"])
        all_views = [current[n] for n in sorted(current)]
        if by_volume:
            selected, errors = select(all_views, sorted(by_volume), [])
            target = dict((k, replica_count(v)) for k, v in by_volume.items())
        else:
            selected, errors = select(all_views, p["names"], p["pvcs"])
            target = p["replicas"]
        if errors:
            m.fail_json(msg="; ".join(errors))
        steps = plan(selected, target, eligibility, p["keep_on"])
        tracker = plan_tracker(steps)
        changing = [s for s in steps if s["changes"]]
        problems = [x for s in changing for x in s["problems"]]
        if busy and changing:
            problems.insert(0, rebuilds_text(busy))
        disabled = rebuilds_disabled(steps, settings)
        if disabled:
            problems.insert(0, disabled)
        result = dict(plan=steps, plan_lines=plan_lines(steps), nodes=eligibility)
        if problems:
            m.fail_json(msg="Nothing was changed: " + " | ".join(problems), **result)
        if m.check_mode or not changing:
            m.exit_with(tracker, done=[], rollback={}, events=[], **result)

        size = p["concurrency"]
        for i in range(0, len(changing), size):
            batch = changing[i:i + size]
            names = [s["volume"] for s in batch]
            before, why = self.guard(names)
            if why:
                self.fail("Stopped before %s: %s" % (", ".join(names), why), steps,
                          stopped={"volumes": names, "reason": why, "patched": False})
            watches = {}
            for s in batch:
                if s["from"] != s["to"]:
                    self.patch(s, steps)
                    self.log(s["volume"], "numberOfReplicas %d -> %d" % (s["from"], s["to"]))
                self.remove(s, before[s["volume"]], steps)
                # the guard's read is the state before the patch: what the watch counts from
                watches[s["volume"]] = Watch(before[s["volume"]], s["to"])
            self.wait(watches, steps)
            self.release()
        m.exit_with(tracker, done=self.done, rollback=self.rollback, events=self.events, **result)

    def patch(self, step, steps):
        """numberOfReplicas to the step's count. Going down to the replicas the plan keeps,
        replica auto-balance is held off for the volume in the same write
        (``replicaAutoBalance: disabled``) until its wait is over: else longhorn-manager
        removes an extra replica of its own choosing (perhaps the one the plan keeps)
        while the module deletes the other, and the volume is left with none."""
        name, target = step["volume"], step["to"]
        hold = bool(step.get("remove")) and target < step["from"]

        def mutate(obj):
            spec = obj.setdefault("spec", {})
            spec["numberOfReplicas"] = target
            if hold and auto_balance(spec.get("replicaAutoBalance"), self.balance_setting) != "disabled":
                spec["replicaAutoBalance"] = "disabled"
            return obj
        try:
            before, after = self.module.update("Volume", API, name, mutate, namespace=self.ns)
        except (ConflictRetriesExhausted, ObjectNotFound) as e:
            self.fail("Stopped at %s: %s" % (name, e), steps,
                      stopped={"volumes": [name], "reason": str(e), "patched": False})
        self.rollback[name] = int(before.get("spec", {}).get("numberOfReplicas") or 0)
        was = before.get("spec", {}).get("replicaAutoBalance")
        if after.get("spec", {}).get("replicaAutoBalance") != was:
            self.held[name] = was
            self.log(name, "replicaAutoBalance %s -> disabled until the change is done (Longhorn would pick"
                           " the replica to remove itself)" % (was or "not set"))

    def release(self):
        """Give each volume held off from auto-balance its replicaAutoBalance back."""
        for name, was in sorted(self.held.items()):
            def mutate(obj, was=was):
                spec = obj.setdefault("spec", {})
                if was is None:
                    spec.pop("replicaAutoBalance", None)
                else:
                    spec["replicaAutoBalance"] = was
                return obj
            try:
                self.module.update("Volume", API, name, mutate, namespace=self.ns)
                self.log(name, "replicaAutoBalance back to %s" % (was or "not set"))
            except (ConflictRetriesExhausted, ObjectNotFound) as e:
                self.log(name, "replicaAutoBalance NOT put back to %s: %s" % (was or "not set", e))
            del self.held[name]

    def remove(self, step, before, steps):
        """Delete the replicas the plan does not keep, after numberOfReplicas went down (so
        that Longhorn does not rebuild them): longhorn-manager leaves an extra healthy
        replica in place unless eviction, data locality or replica auto-balance asks for
        its removal. Each one only while the replicas the plan keeps are still healthy."""
        if not step.get("remove"):
            return
        healthy = set(r["name"] for r in before["replica_list"] if not r["failed"])
        kept = [k["name"] for k in step["keep"]]
        if not all(k in healthy for k in kept):
            self.fail("Stopped at %s: a replica it keeps (%s) is no longer healthy; nothing deleted"
                      % (step["volume"], ", ".join(kept)), steps,
                      stopped={"volumes": [step["volume"]], "reason": "kept replica not healthy",
                               "patched": step["from"] != step["to"]})
        for r in step["remove"]:
            try:
                self.module.write("delete", "Replica", API, name=r["name"], namespace=self.ns)
            except NotFoundError:
                pass  # gone already: what the plan wanted
            except ConflictError as e:
                self.fail("Stopped at %s: deleting replica %s: %s" % (step["volume"], r["name"], e), steps,
                          stopped={"volumes": [step["volume"]], "reason": str(e), "patched": True})
            self.log(step["volume"], "deleted replica %s on %s (keeps %s)" % (
                r["name"], r["node"], ", ".join("%s on %s" % (k["name"], k["node"]) for k in step["keep"])))
        self.rollback.setdefault(step["volume"], step["from"])

    def wait(self, watches, steps):
        """Until every watched volume is done; stop on a failure or the timeout."""
        deadline = time.monotonic() + self.p["wait_timeout"]
        last = {}
        pending = dict(watches)
        while pending:
            current, _busy = self.current()
            for name, watch in sorted(pending.items()):
                view = current.get(name)
                if view is None:
                    state, text = "failed", "%s: the volume disappeared" % name
                else:
                    state, text = watch.observe(view)
                if text != last.get(name):
                    self.log(name, text)
                    last[name] = text
                if state == "failed":
                    self.fail("Stopped at %s: %s" % (name, text), steps,
                              stopped={"volumes": sorted(pending), "reason": text, "patched": True})
                if state == "done":
                    self.done.append(name)
                    del pending[name]
            if not pending:
                return
            if time.monotonic() >= deadline:
                self.fail("Stopped: %s not done within wait_timeout %ss: %s"
                          % (", ".join(sorted(pending)), self.p["wait_timeout"],
                             "; ".join(last[n] for n in sorted(pending))), steps,
                          stopped={"volumes": sorted(pending), "reason": "timeout", "patched": True})
            time.sleep(self.p["poll_interval"])


def run_longhorn_volume_replicas(module):
    Run(module).run()
