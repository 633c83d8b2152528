#!/usr/bin/env python
"""A pod network simulator: the network between the API server and the fixture's pods.

kwok's pods run no process and their IPs (10.244.N.x) are routed nowhere, so the API
server's proxy subresources (``/api/v1/namespaces/<ns>/services/<svc>:<port>/proxy/...``,
which runbook 002's and 003's "curl returns 200" uses from AWX) would have nothing to
reach. The real kube-apiserver reaches pods through its egress selector: with an
``EgressSelectorConfiguration`` whose ``cluster`` selection is ``HTTPConnect`` over a
Unix socket (k8s.io/apiserver pkg/server/egressselector, ``tunnelHTTPConnect``), every
dial of the proxy transport (cmd/kube-apiserver/app/server.go: the "proxy" subresources'
transport uses ``egressselector.Cluster``) and of the kubelet client becomes
``CONNECT <ip>:<port>`` on that socket, as konnectivity's proxy server receives it. This
process listens there and plays the network and the pods' HTTP servers:

- ``CONNECT 127.0.0.1:<port>`` (a kwok "kubelet" server): spliced to that loopback port,
  as a real network proxy forwards to a node.
- ``CONNECT <pod IP>:<port>``: answered only when a pod has that IP
  (``status.podIP``/``podIPs``), is Running and not being deleted, its node is Ready (a
  node that is down answers nothing, as a dead node's pods do not), and one of its
  containers declares ``containerPort: <port>`` (TCP). The last is stricter than a real
  pod, where a process may listen on an undeclared port. Anything else is refused with
  ``503`` and the reason (as the reason phrase too), as a proxy server refuses a dial it
  cannot make; the API server then answers the client with ``503`` "error trying to reach
  service", quoting that status line.
- Once connected, each HTTP request is answered with the status in the pod's annotation
  ``pod-network-simulator.homelab.k8s-ha/http-status`` (default ``200``; a test injects a
  fault by annotating a pod) and a body naming the pod and the path.

Every CONNECT is appended as a JSON line to ``--log``.

    pod_network_simulator.py --socket S --server URL --pki DIR [--log F]
"""

import argparse
import json
import os
import socket
import socketserver
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

STATUS_ANNOTATION = "pod-network-simulator.homelab.k8s-ha/http-status"
AGENT = "pod-network-simulator"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class Api:
    """GETs from the API server as cluster-admin (the harness's client certificate)."""

    def __init__(self, server, pki):
        self.server = server
        self.ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.crt"))
        self.ctx.load_cert_chain(os.path.join(pki, "admin.crt"), os.path.join(pki, "admin.key"))

    def get(self, path):
        req = urllib.request.Request(self.server + path, headers={"User-Agent": AGENT})
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=5) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise


def reachable(api, ip, port):
    """``(pod, None)`` when a process of a pod would answer ``ip:port``, else ``(None, why)``."""
    q = urllib.parse.urlencode({"fieldSelector": "status.podIP=%s" % ip})
    pods = [p for p in (api.get("/api/v1/pods?" + q) or {}).get("items", [])
            if not p["metadata"].get("deletionTimestamp") and p.get("status", {}).get("phase") == "Running"]
    if not pods:
        return None, "no Running pod has IP %s" % ip
    pod = pods[0]
    name = "%s/%s" % (pod["metadata"]["namespace"], pod["metadata"]["name"])
    node = api.get("/api/v1/nodes/%s" % pod["spec"].get("nodeName", "")) or {}
    ready = [c for c in node.get("status", {}).get("conditions", []) if c["type"] == "Ready"]
    if not ready or ready[0]["status"] != "True":
        return None, "pod %s: its node %s is not Ready (no route)" % (name, pod["spec"].get("nodeName"))
    declared = [pt.get("containerPort") for c in pod["spec"].get("containers", [])
                for pt in c.get("ports") or [] if pt.get("protocol", "TCP") == "TCP"]
    if port not in declared:
        return None, "pod %s: connection refused on port %d (its containers declare %s)" % (
            name, port, ", ".join(str(d) for d in declared) or "no port")
    return pod, None


def splice(a, b):
    def pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
    t = threading.Thread(target=pump, args=(b, a), daemon=True)
    t.start()
    pump(a, b)
    t.join()


class Handler(socketserver.StreamRequestHandler):
    def reply(self, status, reason, body=b"", headers=()):
        head = "HTTP/1.1 %d %s\r\n" % (status, reason)
        for k, v in headers:
            head += "%s: %s\r\n" % (k, v)
        head += "Content-Length: %d\r\n\r\n" % len(body)
        self.wfile.write(head.encode() + body)
        self.wfile.flush()

    def read_head(self):
        line = self.rfile.readline(65537).decode("latin-1").rstrip("\r\n")
        headers = {}
        while True:
            h = self.rfile.readline(65537).decode("latin-1").rstrip("\r\n")
            if not h:
                break
            k, _sep, v = h.partition(":")
            headers[k.strip().lower()] = v.strip()
        return line, headers

    def handle(self):
        srv = self.server
        line, _headers = self.read_head()
        parts = line.split()
        if len(parts) != 3 or parts[0] != "CONNECT":
            self.reply(405, "Method Not Allowed", b"CONNECT only\n")
            return
        host, _sep, port = parts[1].rpartition(":")
        host = host.strip("[]")
        entry = {"t": time.time(), "connect": parts[1]}
        try:
            port = int(port)
            if host in LOOPBACK:
                upstream = socket.create_connection(("127.0.0.1", port), timeout=5)
                entry["to"] = "loopback"
                srv.record(entry)
                self.reply(200, "Connection established")
                splice(self.connection, upstream)
                return
            pod, why = reachable(srv.api, host, port)
        except (OSError, ValueError) as e:
            pod, why = None, "%s" % e
        if pod is None:
            entry["refused"] = why
            srv.record(entry)
            # the reason phrase carries why: the API server's error quotes the status line
            self.reply(503, why.replace("\r", " ").replace("\n", " "), (why + "\n").encode())
            return
        name = "%s/%s" % (pod["metadata"]["namespace"], pod["metadata"]["name"])
        entry["pod"] = name
        srv.record(entry)
        self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self.wfile.flush()
        self.serve_http(pod, host)

    def serve_http(self, pod, ip):
        """The pod's HTTP server: each request answered with the pod's annotated status."""
        name = "%s/%s" % (pod["metadata"]["namespace"], pod["metadata"]["name"])
        while True:
            line, headers = self.read_head()
            if not line:
                return
            length = int(headers.get("content-length") or 0)
            if length:
                self.rfile.read(length)
            # the pod as it is now: a test may annotate it between requests
            now = self.server.api.get("/api/v1/namespaces/%s/pods/%s" % tuple(name.split("/"))) or pod
            if now.get("status", {}).get("podIP") != ip:
                return  # the pod is gone or has another IP: the connection drops
            status = int((now["metadata"].get("annotations") or {}).get(STATUS_ANNOTATION, "200"))
            path = line.split()[1] if len(line.split()) > 1 else "/"
            self.server.record({"t": time.time(), "pod": name, "request": line, "status": status})
            self.reply(status, "OK" if status < 400 else "Error",
                       ("%s %s\n" % (name, path)).encode(), headers=[("Content-Type", "text/plain")])
            if headers.get("connection", "").lower() == "close":
                return


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path, api, log):
        self.api = api
        self.log = log
        self.lock = threading.Lock()
        if os.path.exists(path):
            os.unlink(path)
        super().__init__(path, Handler)

    def record(self, entry):
        if not self.log:
            return
        with self.lock, open(self.log, "a") as f:
            f.write(json.dumps(entry) + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--socket", required=True)
    ap.add_argument("--server", required=True)
    ap.add_argument("--pki", required=True)
    ap.add_argument("--log")
    args = ap.parse_args(argv)
    Server(args.socket, Api(args.server, args.pki), args.log).serve_forever()


if __name__ == "__main__":
    main()
