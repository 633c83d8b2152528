#!/usr/bin/env python
"""A talosctl stand-in for tests: ``talosctl [--talosconfig F] -n <ip> reboot --mode=<m>
--wait=true --timeout <t>`` (and ``version``) against the local cluster's kwok nodes.

No registry offers talosctl with a Talos machine behind it. This takes the same
arguments and does to the local cluster what a reboot does to a Talos node:

1. its kubelet stops (the node's kwok process is stopped) and the node reports
   NotReady, as a kubelet going down would;
2. the LINSTOR simulator (if configured) sees the satellite offline for the reboot;
3. after ``reboot_seconds`` the kubelet is back (kwok started again, node Ready);
4. with ``--wait`` it returns once the node is Ready, or fails at ``--timeout``.

Its configuration is a JSON file, given as ``--talosconfig`` (or named by $TALOSCONFIG,
as talosctl reads it, or $TALOSCTL_SIMULATOR): ``nodes`` ({ip: node}),
``python`` and ``localcluster`` (to stop and start kwok), ``kubeconfig``, ``linstor``
(the LINSTOR simulator's URL, optional), ``reboot_seconds``, ``log`` (every call is
appended as a JSON line) and ``fault`` (``fail``: exit 1 before rebooting;
``never-ready``: the node does not come back; ``unreachable``: ``version``, the reachability
probe, fails as for a node whose apid does not answer).

``talosctl -n <ip> version`` answers with the client's and the node's version for a known
node (the read-only probe capi_machine_remediate runs before anything destructive), and
fails as talosctl does for an address no node has.
"""

import json
import os
import re
import subprocess
import sys
import time
import urllib.request


VERSION = "v1.10.0"  # what the simulated talosctl and apid report


def seconds(text):
    m = re.match(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$", text)
    if not m or not any(m.groups()):
        raise SystemExit("talosctl: bad --timeout %r" % text)
    h, mi, s = (int(g or 0) for g in m.groups())
    return h * 3600 + mi * 60 + s


def kubectl(cfg, *args):
    return subprocess.run(["kubectl", "--kubeconfig", cfg["kubeconfig"], *args],
                          capture_output=True, text=True, check=False)


def ready(cfg, node):
    r = kubectl(cfg, "get", "node", node, "-o", "json")
    if r.returncode:
        return False
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in json.loads(r.stdout).get("status", {}).get("conditions", []))


def main(argv):
    args = {"ip": None, "mode": "default", "wait": False, "timeout": "30m", "cmd": None,
            # like talosctl: --talosconfig, else $TALOSCONFIG (then this stand-in's own variable)
            "talosconfig": os.environ.get("TALOSCONFIG") or os.environ.get("TALOSCTL_SIMULATOR")}
    it = iter(argv)
    for a in it:
        if a in ("-n", "--nodes"):
            args["ip"] = next(it)
        elif a == "--talosconfig":
            args["talosconfig"] = next(it)
        elif a.startswith("--mode="):
            args["mode"] = a.split("=", 1)[1]
        elif a in ("--wait", "--wait=true"):
            args["wait"] = True
        elif a == "--timeout":
            args["timeout"] = next(it)
        elif not a.startswith("-"):
            args["cmd"] = a
    with open(args["talosconfig"]) as f:
        cfg = json.load(f)
    with open(cfg["log"], "a") as f:
        f.write(json.dumps({"t": round(time.time(), 3), "argv": argv}) + "\n")
    if args["cmd"] not in ("reboot", "version"):
        print("talosctl simulator: only 'reboot' and 'version' are simulated", file=sys.stderr)
        return 2
    node = cfg["nodes"].get(args["ip"])
    if node is None or (args["cmd"] == "version" and cfg.get("fault") == "unreachable"):
        print("error: rpc error: code = Unavailable desc = connection error: dial tcp %s:50000: no route"
              % args["ip"], file=sys.stderr)
        return 1
    if args["cmd"] == "version":
        # talosctl version: the client's, then the node's apid answers with its own
        print("Client:\n\tTag: %s\nServer:\n\tNODE: %s\n\tTag: %s" % (VERSION, args["ip"], VERSION))
        return 0
    if args["mode"] not in ("default", "powercycle", "force"):
        print("error: invalid reboot mode %r" % args["mode"], file=sys.stderr)
        return 1
    if cfg.get("fault") == "fail":
        print("error: rebooting %s: injected fault" % args["ip"], file=sys.stderr)
        return 1
    lc = [cfg["python"], cfg["localcluster"]]
    subprocess.run(lc + ["node-down", node], check=True, capture_output=True)
    kubectl(cfg, "patch", "node", node, "--subresource=status", "--type=strategic", "-p", json.dumps(
        {"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "KubeletNotReady",
                                    "message": "node is rebooting",
                                    "lastHeartbeatTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                    "lastTransitionTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}]}}))
    if cfg.get("linstor"):
        urllib.request.urlopen(urllib.request.Request(
            "%s/sim/reboot/%s?seconds=%s" % (cfg["linstor"], node, cfg.get("reboot_seconds", 2)), method="POST"),
            timeout=5).read()
    print("%s: rebooting (mode %s)" % (args["ip"], args["mode"]))
    time.sleep(cfg.get("reboot_seconds", 2))
    if cfg.get("fault") != "never-ready":
        subprocess.run(lc + ["node-up", node], check=True, capture_output=True)
    if not args["wait"]:
        return 0
    end = time.time() + seconds(args["timeout"])
    while time.time() < end:
        if ready(cfg, node):
            print("%s: rebooted, node %s Ready" % (args["ip"], node))
            return 0
        time.sleep(0.5)
    print("error: timeout waiting for %s to reboot (%s)" % (args["ip"], args["timeout"]), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
