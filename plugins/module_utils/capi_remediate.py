# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""I/O of module capi_machine_remediate: read the Cluster, its TalosControlPlane,
MachineDeployments, Machines and Nodes; let the pure ``capi`` rules guard and select;
then delete the Machine (resourceVersion precondition), wait until it is gone, reboot
its node with talosctl, wait until the node is Ready and the rollout has its machine
back."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.homelab.k8s_ha.plugins.module_utils import capi as rules
from ansible_collections.homelab.k8s_ha.plugins.module_utils.cluster_lock import lock_from
from ansible_collections.homelab.k8s_ha.plugins.module_utils.kube import ConflictError, NotFoundError, ObjectNotFound
from ansible_collections.homelab.k8s_ha.plugins.module_utils.steps import Steps

GROUP = "cluster.x-k8s.io"
TCP = ("TalosControlPlane", "controlplane.cluster.x-k8s.io/v1alpha3")


class Remediation(Steps):
    def __init__(self, module):
        super(Remediation, self).__init__(module)
        self.version = None

    def api(self):
        want = self.p["capi_version"]
        if want == "auto":
            want = "v1beta2" if self.m.served("Machine", GROUP + "/v1beta2") else "v1beta1"
        return GROUP + "/" + want

    # -- reads ------------------------------------------------------------------------
    def read(self):
        ns, name = self.p["namespace"], self.p["cluster"]
        cluster = self.m.get("Cluster", self.version, name, namespace=ns)
        if cluster is None:
            names = [c["metadata"]["name"] for c in self.m.list("Cluster", self.version, namespace=ns)]
            self.fail("cluster: no Cluster %r in namespace %s; clusters there: %s"
                      % (name, ns, ", ".join(sorted(names)) or "none"))
        kind, cp_name = rules.control_plane_ref(cluster)
        tcp = None
        if kind == TCP[0]:
            tcp = self.m.get(TCP[0], TCP[1], cp_name, namespace=ns)
            if tcp is None:
                self.fail("Cluster %s names TalosControlPlane %s, which does not exist" % (name, cp_name))
        mds = [d for d in self.m.list("MachineDeployment", self.version, namespace=ns)
               if (d.get("spec") or {}).get("clusterName") == name]
        machines, nodes = self.machines_and_nodes()
        return cluster, tcp, mds, machines, nodes

    def health_checks(self):
        """The namespace's MachineHealthChecks (none where CAPI serves no such kind)."""
        if not self.m.served("MachineHealthCheck", self.version):
            return []
        return self.m.list("MachineHealthCheck", self.version, namespace=self.p["namespace"])

    def machines_and_nodes(self):
        """The cluster's Machines and every Node by name: one LIST each."""
        machines = self.m.list("Machine", self.version, namespace=self.p["namespace"],
                               label_selector="%s=%s" % (rules.CLUSTER_LABEL, self.p["cluster"]))
        return machines, dict((n["metadata"]["name"], n) for n in self.m.list("Node", "v1"))

    def decide(self):
        """Guards and selection; fails (before any write) on a guard."""
        cluster, tcp, mds, machines, nodes = self.read()
        errors = rules.guard_errors(tcp, mds)
        if errors:
            self.fail("refusing to remediate: " + "; ".join(errors), guards=errors)
        machine, why, errors = rules.select(machines, nodes, self.p["scope"], self.p["machine"],
                                            self.p["max_concurrent_unavailable"])
        if not errors and machine is not None:
            errors = rules.capi_remediation_errors(machine, self.health_checks(), cluster,
                                                   rules.control_plane_ref(cluster)[0])
        if not errors and machine is not None and rules.node_deletion_allowed(machine, machines):
            errors = rules.drain_errors(machine, machines, self.m.list(
                "Pod", "v1", field_selector="spec.nodeName=" + rules.node_name(machine)),
                self.m.list("PodDisruptionBudget", "policy/v1"))
        if errors:
            self.fail("refusing to remediate: " + "; ".join(errors), guards=errors)
        return tcp, machines, nodes, machine, why

    # -- the flow ---------------------------------------------------------------------
    def run(self):
        p = self.p
        errors = rules.step_errors(p["action"], p["step"], dict(
            (o, p[o]) for o in ("machine", "node", "ip", "control_plane")))
        if errors:
            self.fail("; ".join(errors))
        timeouts = dict((o, self.seconds(o)) for o in ("delete_timeout", "ready_timeout", "rollout_timeout"))
        self.seconds("reboot_timeout")
        self.version = self.api()
        self.lock = lock_from(self.m)
        if p["step"] in ("reboot", "node_ready", "rollout"):
            return self.run_step(p["step"], timeouts)
        _tcp, machines, nodes, machine, why = self.decide()
        result = {"capi_version": self.version, "machine": None, "events": self.events,
                  "waiting": rules.waiting(machines, nodes, p["scope"], (machine or {}).get("metadata", {}).get("name"))}
        if machine is None:
            self.say("no machine needs remediation")
            result.update(changed=False)
            self.m.exit_json(**result)
        mname = machine["metadata"]["name"]
        node, ip, error = rules.resolve(machine, nodes)
        if error:
            self.fail("cannot remediate %s: %s" % (mname, error))
        argv = self.argv(ip)
        # the reboot's tool, before anything destructive: present and able to reach the node
        self.probe(node, ip, argv)
        control_plane = rules.is_control_plane(machine)
        carry = rules.node_carry(nodes.get(node))
        result.update(machine={"name": mname, "uid": machine["metadata"].get("uid"),
                               "control_plane": control_plane, "reasons": why},
                      node=node, ip=ip, talosctl=argv, carry=carry)
        self.say("selected %s (node %s, %s): %s" % (mname, node, ip, ", ".join(why)))
        if p["action"] == "select":
            result["changed"] = False
            self.m.exit_json(**result)

        self.tracker.add("Machine %s/%s" % (p["namespace"], mname), "present", "deleted")
        if p["step"] == "all":
            self.tracker.add("node %s" % node, "unhealthy: " + ", ".join(why), "rebooted (%s)" % " ".join(argv))
        if self.m.check_mode:
            self._delete(machine, dry_run=True)
            self.say("check mode: would delete Machine %s%s" % (mname, ", run %s, then wait for %s Ready"
                                                                % (" ".join(argv), node) if p["step"] == "all" else ""))
            return self.exit(result)

        self._delete(machine)
        gone, _machine = self.wait("Machine %s deleted" % mname, lambda: self.m.get(
            "Machine", self.version, mname, namespace=p["namespace"]), lambda m: m is None,
            timeouts["delete_timeout"])
        if not gone:
            self.fail("Machine %s is still deleting after %s (finalizers, drain or volume detach);"
                      " node %s was NOT rebooted" % (mname, p["delete_timeout"], node), **result)
        self.say("Machine %s deleted" % mname)
        if p["step"] == "delete":
            return self.exit(result)
        self._reboot(result, node, ip, argv)
        self._node_ready(result, node, timeouts["ready_timeout"], carry)
        self._rollout(result, mname, node, control_plane, timeouts["rollout_timeout"])
        return self.exit(result)

    def argv(self, ip):
        p = self.p
        try:
            return rules.talosctl_argv(p["talosctl"], ip, p["reboot_mode"], p["reboot_timeout"], p["talosconfig"])
        except ValueError as e:
            self.fail("%s" % e)

    def probe(self, node, ip, argv):
        """Fail, before any write, when talosctl is not an executable file or does not reach
        ``node`` at ``ip`` (``talosctl -n <ip> version``, read-only, in check mode too)."""
        tool = argv[0]
        found = tool if os.path.sep in tool else self.m.get_bin_path(tool)
        if not found or not os.path.isfile(found) or not os.access(found, os.X_OK):
            self.fail("talosctl: %s %s (option talosctl, capi_rollout_talosctl in the role); the reboot of %s "
                      "would fail after its Machine was deleted, so nothing was changed"
                      % (tool, "is not an executable file" if os.path.sep in tool else "is not on PATH", node))
        probe = rules.talosctl_probe_argv(argv)
        rc, out, err = self.m.run_command([found] + probe[1:])
        if rc != 0:
            said = ((err or out) or "").strip().splitlines()
            self.fail("talosctl does not reach node %s at %s (%s: rc %s: %s); the reboot would fail after its "
                      "Machine was deleted, so nothing was changed" % (
                          node, ip, " ".join(probe), rc, said[-1] if said else "no output"))
        self.say("talosctl reaches %s (%s)" % (node, ip))

    def run_step(self, step, timeouts):
        """One step after the delete, for the node, address and scope the delete step returned."""
        p = self.p
        mname, node, ip, control_plane = p["machine"], p["node"], p["ip"], p["control_plane"]
        machines, nodes = self.machines_and_nodes()
        result = {"capi_version": self.version, "step": step, "node": node, "events": self.events,
                  "machine": {"name": mname, "control_plane": control_plane},
                  "waiting": rules.waiting(machines, nodes, p["scope"], mname)}
        if step == "reboot":
            argv = self.argv(ip)
            result.update(ip=ip, talosctl=argv)
            self.tracker.add("node %s" % node, "machine %s deleted" % mname, "rebooted (%s)" % " ".join(argv))
            if self.m.check_mode:
                self.say("check mode: would run %s" % " ".join(argv))
            else:
                self._reboot(result, node, ip, argv)
        elif self.m.check_mode:
            if step == "node_ready":
                missing = rules.carry_missing(nodes.get(node), p["carry"])
                self.say("check mode: node %s Ready=%s; not waiting; it lacks %s" % (
                    node, rules.node_ready(nodes.get(node)), rules.carry_text(missing)))
            else:
                down, result["replacement"] = rules.rollout_state(machines, nodes, control_plane, node, mname)
                self.say("check mode: %s; not waiting" % _down_text(down))
        elif step == "node_ready":
            self._node_ready(result, node, timeouts["ready_timeout"], p["carry"])
        else:
            self._rollout(result, mname, node, control_plane, timeouts["rollout_timeout"])
        return self.exit(result)

    def _reboot(self, result, node, ip, argv):
        rc, out, err = self.m.run_command(argv)
        result["talosctl_output"] = (out or "").strip().splitlines()[-5:]
        if rc != 0:
            self.fail("talosctl reboot of %s (%s) failed (rc %s): %s" % (node, ip, rc, (err or out).strip()),
                      **result)
        self.say("talosctl reboot %s done" % ip)

    def _node_ready(self, result, node, timeout, carry=None):
        """Wait until ``node`` is Ready. As soon as its Node object exists again (a new
        registration, when CAPI deleted it with the Machine), put back what it lacks of
        ``carry`` (read-modify-write with resourceVersion), before it is Ready, so that
        the scheduler never sees the node without its taints for longer than it must."""
        restored = {"labels": {}, "taints": []}
        result["restored"] = restored

        def state():
            current = self.m.get("Node", "v1", node)
            if current is not None and carry and any(rules.carry_missing(current, carry).values()):
                try:
                    before, current = self.m.update("Node", "v1", node, lambda n: rules.with_carry(n, carry))
                except ObjectNotFound:
                    return rules.node_ready(None)
                missing = rules.carry_missing(before, carry)
                restored["labels"].update(missing["labels"])
                restored["taints"].extend(t for t in missing["taints"] if t not in restored["taints"])
                self.say("node %s registered again without %s: put back" % (node, rules.carry_text(missing)))
            return rules.node_ready(current)

        ready, _state = self.wait("node %s Ready" % node, state, lambda s: s == "True", timeout)
        if any(restored.values()):
            self.tracker.add("node %s labels and taints" % node, "lacking %s" % rules.carry_text(restored),
                             "put back")
        if not ready:
            self.fail("node %s is not Ready %s after its reboot" % (node, self.p["ready_timeout"]), **result)
        self.say("node %s Ready" % node)

    def _rollout(self, result, mname, node, control_plane, timeout):
        def rollout():
            ms, ns = self.machines_and_nodes()
            down, result["replacement"] = rules.rollout_state(ms, ns, control_plane, node, mname)
            return down

        back, down = self.wait("rollout", rollout, lambda d: not d, timeout, _down_text)
        if not back:
            self.fail("the rollout did not get its machine back within %s: %s" % (
                self.p["rollout_timeout"], "; ".join("%s: %s" % kv for kv in sorted(down.items()))), **result)
        self.say("rollout: every machine Running and healthy; replacement %s" % result.get("replacement"))

    def _delete(self, machine, dry_run=False):
        name = machine["metadata"]["name"]
        try:
            self.m.write("delete", "Machine", self.version, name=name, namespace=self.p["namespace"],
                         resource_version=machine["metadata"]["resourceVersion"])
        except ConflictError:
            self.fail("Machine %s changed since it was selected (HTTP 409); nothing was deleted. Run again"
                      % name)
        except NotFoundError:
            self.fail("Machine %s is gone already; nothing was deleted" % name)
        if not dry_run:
            self.say("Machine %s delete sent" % name)


def _down_text(down):
    return ("%d machine(s) not back: %s" % (len(down), ", ".join(sorted(down)))) if down \
        else "every machine Running and healthy"


def run_capi_machine_remediate(module):
    Remediation(module).run()
