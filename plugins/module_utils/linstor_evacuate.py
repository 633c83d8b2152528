# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""I/O of module linstor_evacuate: the LINSTOR controller through python-linstor, the
controller's Service through the Kubernetes API. The decisions are the pure
``linstor`` rules; this file reads, sends the one PUT an action needs, and waits."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.homelab.k8s_ha.plugins.module_utils import linstor as rules
from ansible_collections.homelab.k8s_ha.plugins.module_utils.cluster_lock import lock_from
from ansible_collections.homelab.k8s_ha.plugins.module_utils.steps import Steps

try:
    import linstor
    from linstor.errors import LinstorError
    HAS_LINSTOR, LINSTOR_IMPORT_ERROR = True, None
except ImportError:
    HAS_LINSTOR, LINSTOR_IMPORT_ERROR = False, traceback.format_exc()

    class LinstorError(Exception):
        pass


class ControllerError(Exception):
    """The controller refused a request, or could not be reached; the text says which."""


class Controller(object):
    """The few calls runbook 004 needs, each returning the REST data (``data_v1``)."""

    def __init__(self, url, timeout):
        self.url = url
        self.api = linstor.Linstor(url, timeout=timeout, keep_alive=True, agent_info="homelab.k8s_ha")
        try:
            self.api.connect()
        except LinstorError as e:
            raise ControllerError("cannot reach the LINSTOR controller at %s: %s" % (url, e))
        except OSError as e:
            raise ControllerError("cannot reach the LINSTOR controller at %s: %s" % (url, e))

    def _call(self, what, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (LinstorError, OSError) as e:
            raise ControllerError("%s at %s failed: %s" % (what, self.url, e))

    def _data(self, what, replies):
        errors = rules.reply_errors([r.data_v1 for r in replies if hasattr(r, "ret_code")])
        if errors:
            raise ControllerError("%s: the controller answered: %s" % (what, " | ".join(errors)))
        for r in replies:
            if not hasattr(r, "ret_code"):
                return r.data_v1
        return []

    def nodes(self):
        return self._data("node list", self._call("node list", self.api.node_list))

    def resources(self, nodes=None, pools=None):
        return self._data("resource list", self._call(
            "resource list", self.api.volume_list, filter_by_nodes=nodes, filter_by_stor_pools=pools))

    def put(self, what, fn, node):
        """The replies' data; an error reply raises ControllerError."""
        replies = self._call(what, fn, node)
        errors = rules.reply_errors([r.data_v1 for r in replies])
        if errors:
            raise ControllerError("%s %s: the controller refused: %s" % (what, node, " | ".join(errors)))
        return [r.data_v1 for r in replies]

    def close(self):
        try:
            self.api.disconnect()
        except Exception:  # pylint: disable=broad-except
            pass


class Evacuation(Steps):
    def __init__(self, module):
        super(Evacuation, self).__init__(module)
        self.ctl = None

    def fail(self, msg, **fields):
        if self.ctl is not None:
            self.ctl.close()
        fields["controller_url"] = getattr(self.ctl, "url", None)
        super(Evacuation, self).fail(msg, **fields)

    def url(self):
        if self.p["controller_url"]:
            return self.p["controller_url"]
        ns = self.p["linstor_namespace"]
        services = self.m.list("Service", "v1", namespace=ns)
        url, error = rules.controller_url(services, ns, self.p["controller_selector"])
        if error:
            self.fail(error)
        return url

    # -- actions ----------------------------------------------------------------------
    def run(self):
        p = self.p
        if not HAS_LINSTOR:
            self.m.fail_json(msg=missing_required_lib("python-linstor"), exception=LINSTOR_IMPORT_ERROR)
        action = p["action"]
        if action in ("evacuate", "wait_evacuated", "restore") and not p["node"]:
            self.fail("node: required when action is %s" % action)
        timeout = self.seconds("settle_timeout" if action == "settle" else "evacuation_timeout")
        url = self.url()
        try:
            self.ctl = Controller(url, p["request_timeout"])
        except ControllerError as e:
            self.fail("%s" % e)
        self.lock = lock_from(self.m)
        try:
            nodes = self.ctl.nodes()
            if p["node"]:
                error = rules.node_errors(nodes, p["node"])
                if error:
                    self.fail(error)
            result = getattr(self, "_" + action)(nodes, timeout)
        except ControllerError as e:
            self.fail("%s" % e)
        self.ctl.close()
        result["controller_url"] = url
        self.exit(result)

    def faulty(self, resources=None):
        """The faulty rows of ``resources`` (one LIST of every resource when not given)."""
        rows = rules.faulty_rows(self.ctl.resources() if resources is None else resources)
        self.say("faulty check: %d faulty" % len(rows))
        return rows

    def _check(self, nodes, _timeout):
        rows = self.faulty()
        if rows and self.p["fail_on_faulty"]:
            self.fail(faulty_message(rows, "LINSTOR is not healthy"), faulty=rows)
        return {"faulty": rows, "node_flags": _flags(nodes, self.p["node"])}

    def _remaining(self):
        node, pool = self.p["node"], self.p["storage_pool"]
        return rules.rows_on(self.ctl.resources(nodes=[node], pools=[pool]), node, pool)

    def _evacuate(self, nodes, timeout):
        node, pool = self.p["node"], self.p["storage_pool"]
        resources = self.ctl.resources()  # one LIST serves the faulty check and what is left
        faulty = self.faulty(resources)
        if faulty:
            self.fail(faulty_message(faulty, "refusing to evacuate %s" % node), faulty=faulty)
        target = rules.find_node(nodes, node)
        flags = target.get("flags") or []
        remaining = rules.rows_on(resources, node, pool)
        send = rules.evacuate_needed(target)
        if send:
            self.tracker.add("node %s flags" % node, sorted(flags), sorted(set(flags) | {"EVACUATE"}))
        self.tracker.add("resources of pool %s on %s" % (pool, node),
                         [r["resource"] for r in remaining], [])
        out = {"faulty": [], "node_flags": flags, "evacuate_sent": False, "remaining": remaining}
        if self.m.check_mode:
            self.say("check mode: would %s, then wait for %d resource(s) of %s to leave %s"
                     % ("send node evacuate" if send else "not send evacuate (already evacuating)",
                        len(remaining), pool, node))
            return out
        if send:
            replies = self.ctl.put("node evacuate", self.ctl.api.node_evacuate, node)
            out["evacuate_sent"] = True
            self.say("node evacuate %s sent" % node)
            stuck = rules.not_evacuating(replies)
            if stuck:
                # LINSTOR flagged the node but will move these nowhere: waiting cannot help
                out["node_flags"] = _flags(self.ctl.nodes(), node)
                self.fail("node evacuate %s: LINSTOR will not evacuate %d resource(s): %s. The node is flagged"
                          " EVACUATE now and they stay on it; nothing was deleted or rebooted. Give LINSTOR a node"
                          " that can take them (a free storage pool %s), or restore %s (action=restore; the"
                          " rollback playbook does it)" % (node, len(stuck), " | ".join(stuck), pool, node),
                          not_evacuating=stuck, **out)
        if not self.p["wait"]:
            out["node_flags"] = _flags(self.ctl.nodes(), node)
            self.say("not waiting: %s (action=wait_evacuated waits)" % _left(remaining))
            return out
        out["remaining"] = self._wait_gone(timeout, evacuate_sent=out["evacuate_sent"])
        out["node_flags"] = _flags(self.ctl.nodes(), node)
        return out

    def _wait_evacuated(self, nodes, timeout):
        node, pool = self.p["node"], self.p["storage_pool"]
        flags = rules.find_node(nodes, node).get("flags") or []
        remaining = self._remaining()
        out = {"node_flags": flags, "remaining": remaining}
        if remaining and not any(f in flags for f in rules.RESTORE_FLAGS):
            self.fail("node %s is not evacuating (flags: %s), so %d resource(s) of pool %s would never leave it:"
                      " send the evacuation first (action=evacuate)"
                      % (node, ",".join(flags) or "none", len(remaining), pool), **out)
        if self.m.check_mode:
            self.say("check mode: %s; not waiting" % _left(remaining))
            return out
        out["remaining"] = self._wait_gone(timeout)
        return out

    def _wait_gone(self, timeout, **fields):
        """Until no resource of the pool is left on the node; fails at the timeout naming them."""
        node, pool = self.p["node"], self.p["storage_pool"]
        _ok, remaining = self.wait("resources of %s on %s" % (pool, node), self._remaining, lambda r: not r,
                                   timeout, _left)
        if remaining:
            in_use = [r["resource"] for r in remaining if "InUse" in r["state"]]
            self.fail("evacuation of %s did not finish within %s: %d resource(s) of pool %s are still on it: %s.%s"
                      " Nothing was deleted or rebooted; the node stays evacuating (restore it with action=restore)"
                      % (node, self.p["evacuation_timeout"], len(remaining), pool,
                         ", ".join("%s (%s)" % (r["resource"], r["state"]) for r in remaining),
                         (" LINSTOR removes a replica only once nothing uses it (DRBD Primary), and a pod on %s"
                          " still uses %s: stop it or move it first." % (node, ", ".join(in_use))) if in_use else ""),
                      remaining=remaining, **fields)
        return remaining

    def _restore(self, nodes, _timeout):
        node = self.p["node"]
        target = rules.find_node(nodes, node)
        flags = target.get("flags") or []
        needed = rules.restore_needed(target)
        out = {"node_flags": flags, "restore_sent": False}
        if needed:
            self.tracker.add("node %s flags" % node, sorted(flags),
                             sorted(f for f in flags if f not in rules.RESTORE_FLAGS))
        if not needed or self.m.check_mode:
            self.say("node %s %s" % (node, ("would be restored" if needed else
                                            "is neither evacuated nor evicted: no restore needed")))
            return out
        self.ctl.put("node restore", self.ctl.api.node_restore, node)
        out["restore_sent"] = True
        flags = _flags(self.ctl.nodes(), node)
        out["node_flags"] = flags
        self.say("node restore %s sent; flags now %s" % (node, ",".join(flags) or "none"))
        if any(f in flags for f in rules.RESTORE_FLAGS):
            self.fail("node restore %s was accepted but the node still has %s" % (node, ",".join(flags)),
                      node_flags=flags)
        return out

    def _settle(self, _nodes, timeout):
        if self.m.check_mode:
            resources = self.ctl.resources()
            rows = rules.unsettled_rows(resources)
            self.say("check mode: %d resource(s) not settled now; not waiting" % len(rows))
            return {"unsettled": rows, "faulty": self.faulty(resources)}
        _ok, resources = self.wait("settle", self.ctl.resources, lambda r: not rules.unsettled_rows(r),
                                   timeout, lambda r: _unsettled(rules.unsettled_rows(r)))
        rows = rules.unsettled_rows(resources)
        if rows:
            self.fail("LINSTOR did not settle within %s: %d resource(s) still %s"
                      % (self.p["settle_timeout"], len(rows), "; ".join(
                          "%s on %s: %s" % (r["resource"], r["node"], ", ".join(r["states"])) for r in rows)),
                      unsettled=rows)
        faulty = self.faulty(resources)  # the settled read itself
        if faulty:
            self.fail(faulty_message(faulty, "LINSTOR settled but is not healthy"), faulty=faulty)
        return {"unsettled": [], "faulty": []}


def _left(rows):
    return "%d left%s" % (len(rows), (": " + ", ".join(x["resource"] for x in rows[:5])) if rows else "")


def _unsettled(rows):
    return "%d not settled%s" % (len(rows), (": " + ", ".join(
        "%s@%s %s" % (x["resource"], x["node"], "/".join(x["states"])) for x in rows[:5])) if rows else "")


def _flags(nodes, name):
    n = rules.find_node(nodes, name) if name else None
    return (n or {}).get("flags") or []


def faulty_message(rows, prefix):
    return "%s: %d faulty resource(s) (linstor resource list --faulty): %s" % (
        prefix, len(rows), "; ".join("%s on %s: %s%s" % (
            r["resource"], r["node"], r["state"], (" " + ",".join(r["connections"])) if r["connections"] else "")
            for r in rows))


def run_linstor_evacuate(module):
    Evacuation(module).run()
