#!/usr/bin/env python
"""A LINSTOR controller simulator for tests: the REST endpoints runbook 004's guard uses.

No registry offers a LINSTOR controller that runs without DRBD, LVM and satellites, so
this stands in for it. It follows the controller's documented REST shapes (those
python-linstor parses; see REFERENCE.md section 5):

- ``GET /v1/controller/version``: ``{version, git_hash, build_time, rest_api_version}``.
- ``GET /v1/nodes``: nodes with ``name``, ``type``, ``flags``, ``connection_status``.
- ``GET /v1/view/resources[?nodes=..&storage_pools=..&resources=..]``: resource rows
  with ``flags``, ``layer_object.drbd.connections`` (``connected``, ``message``),
  ``state.in_use`` and ``volumes`` (``storage_pool_name``, ``layer_data_list``,
  ``state.disk_state``, ``state.replication_states``).
- ``PUT /v1/nodes/{node}/evacuate`` and ``PUT /v1/nodes/{node}/restore``: replies are
  lists of ``{ret_code, message, cause, correction}``; an error has the two top bits of
  the signed 64-bit ``ret_code`` set, as the Java controller sends it.

Behaviour:

- **Evacuation is asynchronous**, as in LINSTOR: the PUT sets the node's EVACUATE
  flag and returns once placement is scheduled. Each diskful resource of the node then
  gets a new replica on another node without one (``Inconsistent``, ``SyncTarget``
  with a rising ``done_percentage``), which becomes UpToDate after ``sync_seconds``;
  only then, and only while nothing uses the source (``state.in_use`` false; LINSTOR's
  ``CtrlRscToggleDiskApiCallHandler.waitForMigration`` waits for both), is the source
  marked DELETE and, ``delete_seconds`` later, gone.
- **A resource no node can take** is not evacuated: the PUT still answers 200 and flags the
  node, with a ``WARN_NOT_EVACUATING`` reply (1020 with the warning bit) "Resource '<rsc>'
  cannot be evacuated as no available storage pool was found" for it
  (``CtrlNodeApiCallHandler.evacuateNodeInTrasaction``), and the resource stays.
- **Restore** refuses a node that is neither evacuated nor evicted (the controller's
  error); otherwise it clears the flags. It does not move data back.
- **Reboot** (``POST /sim/reboot/{node}?seconds=N``, which the talosctl stand-in calls):
  the satellite is OFFLINE for N seconds, its peers' connections to it read
  ``Connecting`` and, once it is back, resync (SyncTarget) for ``sync_seconds``.
- **Faults** (``set_fault`` or ``POST /sim/faults`` with a JSON object):
  ``faulty`` - these resources (``name@node``) show disk state Outdated;
  ``block-evacuation`` - no node can take these nodes' resources (WARN_NOT_EVACUATING);
  ``in-use`` - these nodes' resources are in use there (a pod mounts them: DRBD Primary),
  so an evacuation copies them but never removes the source;
  ``refuse`` - these operations (``evacuate``, ``restore``) answer an error;
  ``stuck-sync`` - after a reboot of these nodes, or any node's restore, these nodes'
  resources stay SyncTarget forever;
  ``down`` - the controller answers 503 to every request.

Every request is logged (``requests``: method, path, status, t) so tests can assert, for
example, that check mode sent no PUT, or that evacuation came before the machine delete.
"""

from __future__ import annotations

import argparse
import http.server
import json
import threading
import time
from urllib.parse import parse_qs, urlparse

MASK_ERROR = 0xC000000000000000
MASK_WARN = 0x8000000000000000
SUCCESS = 0x0000000000C00001  # a node object, no level bits: success
WARN_NOT_EVACUATING = MASK_WARN | 1020  # ApiConsts, a simpleEntry: no object bits


def _signed(code: int) -> int:
    return code - (1 << 64) if code >= 1 << 63 else code


def reply(message, error=False, cause=None, correction=None):
    r = {"ret_code": _signed(MASK_ERROR | 0x0000000000C00000 | 11) if error else SUCCESS,
         "message": message}
    if cause:
        r["cause"] = cause
    if correction:
        r["correction"] = correction
    return r


class LinstorSimulator:
    def __init__(self, nodes, resources, pool="lvm-thick", sync_seconds=1.0, delete_seconds=0.5,
                 port=0):
        """``nodes``: names; ``resources``: {resource name: [nodes with a replica]}."""
        self.pool = pool
        self.sync_seconds = sync_seconds
        self.delete_seconds = delete_seconds
        self.lock = threading.RLock()
        self.t0 = time.monotonic()
        self.requests = []
        self.history = []
        self.faults = {}
        self.nodes = {n: {"name": n, "type": "SATELLITE", "flags": [], "connection_status": "ONLINE",
                          "props": {}, "net_interfaces": []} for n in nodes}
        self.rows = {}  # (resource, node) -> row state
        for rsc, where in resources.items():
            for n in where:
                self.rows[(rsc, n)] = {"disk": "UpToDate", "flags": [], "sync_until": None,
                                       "delete_at": None, "source": None}
        self.offline_until = {}
        self.port = port
        self._server = None
        self._stop = threading.Event()

    # ---- time and events ---------------------------------------------------------------
    def now(self):
        return round(time.monotonic() - self.t0, 3)

    def record(self, event, **fields):
        fields.update(t=self.now(), event=event)
        self.history.append(fields)

    def set_fault(self, **faults):
        with self.lock:
            for k, v in faults.items():
                self.faults[k.replace("_", "-")] = v

    def _fault(self, name):
        return self.faults.get(name) or []

    # ---- state machine -----------------------------------------------------------------
    def tick(self):
        with self.lock:
            now = self.now()
            for n, until in list(self.offline_until.items()):
                if until <= now:
                    del self.offline_until[n]
                    self.nodes[n]["connection_status"] = "ONLINE"
                    self.record("satellite-online", node=n)
                    stuck = n in self._fault("stuck-sync")
                    for (rsc, node), row in self.rows.items():
                        if node == n:
                            row["disk"] = "Inconsistent"
                            row["sync_until"] = float("inf") if stuck else now + self.sync_seconds
            for key, row in list(self.rows.items()):
                if row["sync_until"] is not None and row["sync_until"] <= now:
                    row["disk"], row["sync_until"] = "UpToDate", None
                    self.record("synced", resource=key[0], node=key[1])
                    src = row.get("source")
                    if src and (key[0], src) in self.rows and src in self._fault("in-use"):
                        row["waiting_for"] = src  # waitForMigration: until the source is not in use
                        self.record("source-in-use", resource=key[0], node=src)
                    elif src and (key[0], src) in self.rows:
                        self.rows[(key[0], src)]["delete_at"] = now + self.delete_seconds
                        self.rows[(key[0], src)]["flags"].append("DELETE")
                        self.record("deleting", resource=key[0], node=src)
                src = row.get("waiting_for")
                if src and src not in self._fault("in-use") and (key[0], src) in self.rows:
                    row["waiting_for"] = None
                    self.rows[(key[0], src)]["delete_at"] = now + self.delete_seconds
                    self.rows[(key[0], src)]["flags"].append("DELETE")
                    self.record("deleting", resource=key[0], node=src)
                if row["delete_at"] is not None and row["delete_at"] <= now:
                    del self.rows[key]
                    self.record("deleted", resource=key[0], node=key[1])

    def _evacuate(self, node):
        """The node flagged EVACUATE; a new replica elsewhere for each of its resources, or a
        WARN_NOT_EVACUATING reply for one no node can take (returned, to add to the answer)."""
        now = self.now()
        self.nodes[node]["flags"] = sorted(set(self.nodes[node]["flags"]) | {"EVACUATE"})
        warnings = []
        for (rsc, n) in sorted(self.rows):
            if n != node or self.rows[(rsc, n)]["delete_at"] is not None:
                continue
            have = {m for (r, m) in self.rows if r == rsc}
            targets = [m for m in sorted(self.nodes) if m not in have and
                       "EVACUATE" not in self.nodes[m]["flags"] and m not in self.offline_until]
            if not targets or node in self._fault("block-evacuation"):
                self.record("no-target", resource=rsc, node=node)
                warnings.append({"ret_code": _signed(WARN_NOT_EVACUATING), "message":
                                 "Resource '%s' cannot be evacuated as no available storage pool was found" % rsc})
                continue
            self.rows[(rsc, targets[0])] = {"disk": "Inconsistent", "flags": [], "delete_at": None,
                                            "sync_until": now + self.sync_seconds, "source": node}
            self.record("replica-created", resource=rsc, node=targets[0], source=node)
        return warnings

    # ---- REST views --------------------------------------------------------------------
    def _row(self, rsc, node, row):
        now = self.now()
        peers = sorted(m for (r, m) in self.rows if r == rsc and m != node)
        conns = {}
        for p in peers:
            off = p in self.offline_until or node in self.offline_until
            conns[p] = {"connected": not off, "message": "Connecting" if off else "Connected"}
        disk = "Outdated" if "%s@%s" % (rsc, node) in self._fault("faulty") else row["disk"]
        if node in self.offline_until:
            disk = "DUnknown"
        state = {"disk_state": disk}
        if row["sync_until"] is not None:
            start = row["sync_until"] - self.sync_seconds
            done = 50.0 if row["sync_until"] == float("inf") else \
                min(99.9, max(0.0, 100.0 * (now - start) / self.sync_seconds))
            state["replication_states"] = {p: {"replication_state": "SyncTarget", "done_percentage": round(done, 1)}
                                           for p in peers[:1]}
        flags = list(row["flags"])
        if "EVACUATE" in self.nodes[node]["flags"]:
            flags.append("EVACUATE")
        return {"name": rsc, "node_name": node, "flags": flags, "props": {},
                "layer_object": {"type": "DRBD", "children": [], "drbd": {"connections": conns}},
                "state": {"in_use": node in self._fault("in-use")},
                "volumes": [{"volume_number": 0, "storage_pool_name": self.pool, "provider_kind": "LVM",
                             "flags": [], "layer_data_list": [{"type": "DRBD"}, {"type": "STORAGE"}],
                             "state": state}]}

    def resources(self, nodes=None, pools=None, names=None):
        with self.lock:
            out = []
            for (rsc, node), row in sorted(self.rows.items()):
                if nodes and node not in nodes or names and rsc not in names or pools and self.pool not in pools:
                    continue
                out.append(self._row(rsc, node, row))
            return out

    # ---- HTTP --------------------------------------------------------------------------
    def handle(self, method, path, body):
        url = urlparse(path)
        q = parse_qs(url.query)
        parts = [p for p in url.path.split("/") if p]
        with self.lock:
            self.tick()
            if parts[:1] == ["sim"]:
                return self._sim(method, parts, q, body)
            if self.faults.get("down"):
                return 503, [reply("controller unavailable", error=True)]
            if method == "GET" and url.path == "/v1/controller/version":
                return 200, {"version": "1.32.3", "git_hash": "simulator", "build_time": "2026-01-01T00:00:00+00:00",
                             "rest_api_version": "1.26.0"}
            if method == "GET" and url.path == "/v1/nodes":
                names = q.get("nodes")
                return 200, [dict(n) for k, n in sorted(self.nodes.items()) if not names or k in names]
            if method == "GET" and url.path == "/v1/view/resources":
                return 200, self.resources(q.get("nodes"), q.get("storage_pools"), q.get("resources"))
            if method == "PUT" and len(parts) == 4 and parts[:2] == ["v1", "nodes"] and parts[3] in ("evacuate", "restore"):
                node, op = parts[2], parts[3]
                if node not in self.nodes:
                    return 404, [reply("Node '%s' not found." % node, error=True)]
                if op in self._fault("refuse"):
                    return 500, [reply("%s of node '%s' failed: injected fault" % (op, node), error=True,
                                       cause="simulator fault 'refuse'")]
                if op == "evacuate":
                    warnings = self._evacuate(node)
                    self.record("evacuate", node=node)
                    return 200, [reply("Node '%s' is being evacuated." % node)] + warnings
                if not set(self.nodes[node]["flags"]) & {"EVACUATE", "EVICTED"}:
                    return 400, [reply("Node '%s' is neither evicted nor evacuated." % node, error=True,
                                       correction="Only evicted or evacuated nodes can be restored.")]
                self.nodes[node]["flags"] = [f for f in self.nodes[node]["flags"] if f not in ("EVACUATE", "EVICTED")]
                self.record("restore", node=node)
                for (rsc, n), row in self.rows.items():  # peers resync with the node back
                    if n in self._fault("stuck-sync"):
                        row["disk"], row["sync_until"] = "Inconsistent", float("inf")
                return 200, [reply("Node '%s' restored." % node)]
            return 404, [reply("no such endpoint %s %s" % (method, url.path), error=True)]

    def _sim(self, method, parts, q, body):
        if method == "POST" and parts[1:2] == ["reboot"] and len(parts) == 3:
            node = parts[2]
            if node not in self.nodes:
                return 404, {"error": "unknown node %s" % node}
            seconds = float((q.get("seconds") or ["2"])[0])
            self.offline_until[node] = self.now() + seconds
            self.nodes[node]["connection_status"] = "OFFLINE"
            self.record("satellite-offline", node=node, seconds=seconds)
            return 200, {"node": node, "offline_seconds": seconds}
        if method == "POST" and parts[1:2] == ["faults"]:
            self.set_fault(**(body or {}))
            return 200, self.faults
        if method == "GET" and parts[1:2] == ["history"]:
            return 200, self.history
        return 404, {"error": "no such simulator endpoint"}

    def start(self):
        sim = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                status, data = sim.handle(self.command, self.path, body)
                if not self.path.startswith("/sim/"):
                    sim.requests.append({"t": sim.now(), "method": self.command, "path": self.path, "status": status})
                out = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_PUT = do_POST = _serve  # noqa: N815

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a client that hung up (python-linstor's keep-alive at exit)

        self._server = Server(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

        def ticker():
            while not self._stop.wait(0.1):
                self.tick()

        threading.Thread(target=ticker, daemon=True).start()
        return self

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def stop(self):
        self._stop.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    # ---- for tests ---------------------------------------------------------------------
    def puts(self):
        return [r for r in self.requests if r["method"] != "GET"]

    def on_node(self, node):
        with self.lock:
            return sorted(r for (r, n) in self.rows if n == node)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    ap.add_argument("--port", type=int, default=3370)
    ap.add_argument("--nodes", default="cp-1,worker-1,worker-2")
    ap.add_argument("--resources", default="pvc-a:cp-1,worker-1;pvc-b:worker-1,worker-2",
                    help="name:node,node;name:node,...")
    a = ap.parse_args(argv)
    res = {}
    for item in filter(None, a.resources.split(";")):
        name, where = item.split(":", 1)
        res[name] = where.split(",")
    sim = LinstorSimulator(a.nodes.split(","), res, port=a.port).start()
    print("ready %s" % sim.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
