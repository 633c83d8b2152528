#!/usr/bin/env python
"""A real local Kubernetes control plane for tests, started as plain processes.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler are the real
programs, built from their Go modules by ``build.sh`` at the versions pinned in
``versions.env``. kwok plays the kubelets of the fixture nodes. Everything binds to
127.0.0.1 on free ports. The API server runs with ``--authorization-mode=Node,RBAC``
and writes an audit log of every request.

Command line (the Makefile's cluster-up / cluster-down call this)::

    localcluster.py up [--fixture two-node|three-worker|none]
    localcluster.py down
    localcluster.py status
    localcluster.py load-fixture NAME
    localcluster.py node-down NODE   # the node stops heart-beating
    localcluster.py node-up NODE     # the node heart-beats again

Paths are fixed so that other tools can use them: ``<dir>/kubeconfig`` and
``<dir>/audit.log`` with ``<dir>`` = ``.local/cluster`` in the repository
(``HOMELAB_CLUSTER_DIR`` overrides it).
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The harness's own API calls (api_get, the in-process ``kubectl get``) name themselves so:
# the audit-log filters of the tests tell them from kubectl's and from a module's (whose
# client names itself ".../python").
HARNESS_AGENT = "homelab-test-harness"
REPO = HERE.parent.parent
FIXTURES = REPO / "tests" / "fixtures"
SIMULATORS = REPO / "tests" / "simulators"
DEFAULT_DIR = Path(os.environ.get("HOMELAB_CLUSTER_DIR", REPO / ".local" / "cluster"))

# Nodes carrying this annotation get a kwok process of their own (their "kubelet").
KWOK_ANNOTATION = "kwok.x-k8s.io/node"
# what a kubelet with --enable-controller-attach-detach (its default) puts on its Node:
# the attach/detach controller of kube-controller-manager manages only such nodes' volumes
ATTACH_DETACH_ANNOTATION = "volumes.kubernetes.io/controller-managed-attach-detach"
FIXTURE_LABEL = "homelab.k8s-ha/fixture"


def log(msg: str) -> None:
    print(f"[cluster {datetime.datetime.now(datetime.timezone.utc):%H:%M:%S}] {msg}",
          file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_versions() -> dict[str, str]:
    """The pinned versions from versions.env (the file build.sh sources)."""
    out = {}
    for line in (HERE / "versions.env").read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.strip().split("=", 1)
            out[key] = value
    return out


def build_binaries() -> dict[str, str]:
    """Run build.sh (a no-op when the cache is complete) and return name -> path."""
    out = subprocess.run(["bash", str(HERE / "build.sh")], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    paths = dict(line.split("=", 1) for line in out.split() if "=" in line)
    for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
                 "kwok", "descheduler"):
        if not os.access(paths.get(name, ""), os.X_OK):
            raise RuntimeError(f"build.sh did not produce {name}")
    return paths


# --- PKI ------------------------------------------------------------------------------

def _pki(pki: Path) -> None:
    """CA, API server serving cert, client certs and the service-account key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pki.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "homelab-test-ca")])
    ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
          .public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now)
          .not_valid_after(now + datetime.timedelta(days=365))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False),
                         critical=True)
          .sign(ca_key, hashes.SHA256()))
    _write_key(ca_key, pki / "ca.key")
    (pki / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    issue_cert(pki, "apiserver", "kube-apiserver", server=True)
    issue_cert(pki, "admin", "homelab-admin", "system:masters")
    issue_cert(pki, "controller-manager", "system:kube-controller-manager")
    issue_cert(pki, "scheduler", "system:kube-scheduler")
    # kwok simulates every kubelet with one identity, so it cannot be confined by the
    # Node authorizer (one node per identity); it gets cluster-admin instead.
    issue_cert(pki, "kwok", "kwok-controller", "system:masters")
    issue_cert(pki, "descheduler", "homelab-descheduler", "system:masters")
    sa = ec.generate_private_key(ec.SECP256R1())
    _write_key(sa, pki / "sa.key")
    (pki / "sa.pub").write_bytes(sa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def _write_key(k, path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    path.write_bytes(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))


def issue_cert(pki: Path, name: str, cn: str, org: str | None = None, server: bool = False) -> None:
    """``<pki>/<name>.crt`` and ``.key`` signed by the cluster CA: a client certificate
    (CN user, O group) or, with ``server``, one serving localhost and 127.0.0.1.
    Test helpers (the simulators) use this for identities and webhooks of their own."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), None)
    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    k = ec.generate_private_key(ec.SECP256R1())
    b = (x509.CertificateBuilder().subject_name(x509.Name(attrs)).issuer_name(ca.subject)
         .public_key(k.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=365))
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
    if server:
        b = b.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.DNSName("kubernetes"),
            x509.DNSName("kubernetes.default"), x509.DNSName("kubernetes.default.svc"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("10.96.0.1"))]), critical=False)
        usage = ExtendedKeyUsageOID.SERVER_AUTH
    else:
        usage = ExtendedKeyUsageOID.CLIENT_AUTH
    b = b.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    (pki / f"{name}.crt").write_bytes(
        b.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    _write_key(k, pki / f"{name}.key")


def write_kubeconfig(path: Path, server: str, pki: Path, user: str) -> None:
    cfg = {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": "homelab-local", "cluster": {
            "server": server, "certificate-authority": str(pki / "ca.crt")}}],
        "users": [{"name": user, "user": {
            "client-certificate": str(pki / f"{user}.crt"),
            "client-key": str(pki / f"{user}.key")}}],
        "contexts": [{"name": "homelab-local", "context": {
            "cluster": "homelab-local", "user": user}}],
        "current-context": "homelab-local",
    }
    path.write_text(json.dumps(cfg, indent=2))  # JSON is YAML
    path.chmod(0o600)


AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  # Every request, with verb, user, URI (dryRun shows there) and response code.
  - level: Metadata
"""


# The API server's dials to pods and nodes ("cluster" traffic) go to the pod network
# simulator as HTTP CONNECT over a Unix socket (k8s.io/apiserver egressselector).
EGRESS_SELECTOR = """apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
  - name: cluster
    connection:
      proxyProtocol: HTTPConnect
      transport:
        uds:
          udsName: %s
"""


class LocalCluster:
    """Start, stop and drive the local control plane rooted at ``workdir``."""

    def __init__(self, workdir: Path | str = DEFAULT_DIR, node_monitor_grace: int | None = None,
                 default_toleration_seconds: int = 300):
        self.dir = Path(workdir).resolve()
        self.kubeconfig = self.dir / "kubeconfig"
        self.audit_log = self.dir / "audit.log"
        self.logs = self.dir / "logs"
        self.pki = self.dir / "pki"
        self.state_file = self.dir / "state.json"
        # Node-monitor grace period (s): fast by default, NODE_MONITOR_GRACE overrides;
        # a running cluster keeps the value it was started with.
        self._grace_wanted = int(node_monitor_grace or os.environ.get("NODE_MONITOR_GRACE", 12))
        self.grace = int(self._state().get("grace") or self._grace_wanted)
        self.default_toleration = int(default_toleration_seconds)

    # ---- state -----------------------------------------------------------------------
    def _state(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}

    @property
    def pod_network_socket(self) -> str:
        """The pod network simulator's Unix socket (a socket path has at most 107 bytes)."""
        path = str(self.dir / "pod-network.sock")
        if len(path) > 100:
            path = "/tmp/homelab-podnet-%08x.sock" % zlib.crc32(path.encode())
        return path

    @property
    def server(self) -> str | None:
        return self._state().get("server")

    def binary(self, name: str) -> str:
        """Path of a built component (etcd, kube-*, kwok, descheduler) of this cluster."""
        return self._state()["bins"][name]

    def env(self) -> dict:
        """Environment for a child process that should talk to this cluster."""
        return dict(os.environ, KUBECONFIG=str(self.kubeconfig),
                    K8S_AUTH_KUBECONFIG=str(self.kubeconfig))

    def is_up(self) -> bool:
        st = self._state()
        if not st.get("server"):
            return False
        if not all(_alive(p) for p in st.get("pids", {}).values()):
            return False
        return self.api_get("/readyz") == (200, "ok")

    # ---- http to the API server --------------------------------------------------
    def _ssl(self) -> ssl.SSLContext:
        key = (self.pki / "ca.crt").stat().st_mtime_ns if (self.pki / "ca.crt").exists() else None
        if getattr(self, "_ssl_ctx", (None, None))[0] != key or key is None:
            ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
            ctx.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
            self._ssl_ctx = (key, ctx)
        return self._ssl_ctx[1]

    def _http(self, method: str, url: str, data: bytes | None = None, content_type: str | None = None,
              timeout: float = 5):
        """One request as cluster-admin with the harness's user agent: (status, body text)."""
        headers = {"User-Agent": HARNESS_AGENT}
        if content_type:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, context=self._ssl(), timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")

    def api_get(self, path: str, server: str | None = None, timeout: float = 5):
        """GET ``path`` from the API server as cluster-admin: (status, body); (None, "")
        when no answer came."""
        try:
            return self._http("GET", (server or self.server) + path, timeout=timeout)
        except (OSError, ValueError):
            return None, ""

    def api_call(self, method: str, path: str, body=None, content_type: str = "application/json",
                 timeout: float = 30):
        """``method`` ``path`` with a JSON ``body`` as cluster-admin, from this process (the
        harness's user agent; observe.writes does not count it): (status, parsed body)."""
        data = None if body is None else json.dumps(body).encode()
        status, text = self._http(method, self.server + path, data, content_type, timeout)
        try:
            return status, json.loads(text)
        except ValueError:
            return status, {"message": text}

    def _path(self, word: str, namespace: str | None, every_namespace: bool = False) -> str:
        """The collection path of a kubectl resource word (discovery, as ``kubectl get``)."""
        resource = self._resource(word) or self._resource(word, fresh=True)
        if resource is None:
            raise RuntimeError("the API server serves no resource %r" % word)
        path, _kind, _api_version, namespaced = resource
        inside = namespaced and not every_namespace
        return path.replace("{ns}", "namespaces/%s/" % (namespace or "default") if inside else "")

    def delete(self, word: str, name: str, namespace: str | None = None) -> int:
        """``kubectl delete <word> <name> [-n <namespace>] --ignore-not-found --wait=false``
        from this process: the HTTP status (404 is fine, anything else but 200/202 raises)."""
        status, answer = self.api_call("DELETE", self._path(word, namespace) + "/" + urllib.parse.quote(name))
        if status not in (200, 202, 404):
            raise RuntimeError("delete %s %s: %s %s" % (word, name, status, answer.get("message")))
        return status

    def delete_all(self, word: str, namespace: str | None = None, selector: str | None = None,
                   timeout: float = 120) -> None:
        """``kubectl delete <word> --all|-l <selector> [-n <namespace>|-A] --wait=true`` in
        one DELETE of the collection from this process, then a LIST until none is left
        (finalizers: a PVC's pvc-protection, a PV's pv-protection). ``namespace`` "*": every
        namespace (a namespaced kind is deleted namespace by namespace, as kubectl does)."""
        query = "?" + urllib.parse.urlencode({"labelSelector": selector}) if selector else ""
        if namespace == "*":
            _status, listed = self.api_call("GET", self._path(word, None, every_namespace=True) + query)
            namespaces = sorted({i["metadata"].get("namespace") for i in listed.get("items", [])} - {None})
            paths = [self._path(word, ns) for ns in namespaces]
        else:
            paths = [self._path(word, namespace)]
        for path in paths:
            status, answer = self.api_call("DELETE", path + query)
            if status not in (200, 202):
                raise RuntimeError("delete %s %s: %s %s" % (word, path, status, answer.get("message")))
        deadline = time.monotonic() + timeout
        for path in paths:
            while True:
                status, listed = self.api_call("GET", path + query)
                if status == 200 and not listed.get("items"):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("delete %s: still there after %ss: %s" % (
                        word, timeout, [i["metadata"]["name"] for i in listed.get("items", [])]))
                time.sleep(0.1)

    def patch(self, word: str, name: str, patch, namespace: str | None = None, patch_type: str = "json",
              check: bool = True) -> int:
        """``kubectl patch <word> <name> [-n <namespace>] --type=<json|merge> -p <patch>`` from
        this process: the HTTP status (a failure raises unless ``check`` is false)."""
        content = {"json": "application/json-patch+json", "merge": "application/merge-patch+json"}[patch_type]
        status, answer = self.api_call("PATCH", self._path(word, namespace) + "/" + urllib.parse.quote(name),
                                       patch, content_type=content)
        if check and status != 200:
            raise RuntimeError("patch %s %s: %s %s" % (word, name, status, answer.get("message")))
        return status

    # ---- lifecycle -----------------------------------------------------------------
    def up(self, fixture: str | None = None) -> float:
        """Start the control plane and load ``fixture``; return seconds taken."""
        if self._state():
            self.down()
        bins = build_binaries()
        t0 = time.monotonic()  # the start time excludes a (cached) build check
        self.grace = self._grace_wanted
        # Every start begins clean: no logs, audit events or state of an earlier run.
        for sub in ("logs", "pki"):
            shutil.rmtree(self.dir / sub, ignore_errors=True)
        for sub in ("etcd", "logs", "pki"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self.audit_log.unlink(missing_ok=True)
        _pki(self.pki)
        ports = {k: free_port() for k in ("etcd", "peer", "api", "kcm", "sched")}
        server = f"https://127.0.0.1:{ports['api']}"
        for user in ("admin", "controller-manager", "scheduler", "kwok", "descheduler"):
            write_kubeconfig(self.dir / (f"{user}.kubeconfig" if user != "admin" else "kubeconfig"),
                             server, self.pki, user)
        (self.dir / "audit-policy.yaml").write_text(AUDIT_POLICY)
        state = {"server": server, "ports": ports, "pids": {}, "bins": bins, "kwok": {},
                 "grace": self.grace}
        self.state_file.write_text(json.dumps(state, indent=2))

        etcd_url = f"http://127.0.0.1:{ports['etcd']}"
        peer_url = f"http://127.0.0.1:{ports['peer']}"
        self._start(state, "etcd", [
            bins["etcd"], "--name=homelab", f"--data-dir={self.dir / 'etcd'}",
            f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=homelab={peer_url}", "--unsafe-no-fsync",
            "--quota-backend-bytes=4294967296", "--log-level=warn"])
        self.wait("etcd healthy", lambda: _http_ok(etcd_url + "/health"), 60)

        pki = self.pki
        # The pod network (tests/simulators/pod_network_simulator.py): the API server's
        # egress selector sends its dials to pods and kubelets through it, so the proxy
        # subresources reach a pod as they do through konnectivity.
        sock = self.pod_network_socket
        (self.dir / "egress-selector.yaml").write_text(EGRESS_SELECTOR % sock)
        self._start(state, "pod-network", [
            sys.executable, str(SIMULATORS / "pod_network_simulator.py"), f"--socket={sock}",
            f"--server={server}", f"--pki={pki}", f"--log={self.logs / 'pod-network.jsonl'}"])
        self.wait("pod network socket", lambda: Path(sock).exists(), 30)
        self._start(state, "kube-apiserver", [
            bins["kube-apiserver"], f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={ports['api']}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--api-audiences=https://kubernetes.default.svc.cluster.local",
            "--authorization-mode=Node,RBAC", "--anonymous-auth=false",
            "--service-cluster-ip-range=10.96.0.0/16", "--allow-privileged=true",
            f"--audit-policy-file={self.dir / 'audit-policy.yaml'}",
            f"--audit-log-path={self.audit_log}", "--audit-log-maxsize=0",
            f"--default-not-ready-toleration-seconds={self.default_toleration}",
            f"--default-unreachable-toleration-seconds={self.default_toleration}",
            f"--egress-selector-config-file={self.dir / 'egress-selector.yaml'}",
            "--profiling=false", "--v=1"])
        self.wait("kube-apiserver ready",
                  lambda: self.api_get("/readyz", server) == (200, "ok"), 120)

        # Client QPS above the defaults (20 / 50): thousands of pods settle in seconds.
        common = ["--bind-address=127.0.0.1", "--profiling=false",
                  "--kube-api-qps=200", "--kube-api-burst=400",
                  "--leader-elect=true", "--leader-elect-lease-duration=15s",
                  "--leader-elect-renew-deadline=10s", "--leader-elect-retry-period=2s"]
        kcm_kc = self.dir / "controller-manager.kubeconfig"
        self._start(state, "kube-controller-manager", [
            bins["kube-controller-manager"], f"--kubeconfig={kcm_kc}",
            f"--authentication-kubeconfig={kcm_kc}", f"--authorization-kubeconfig={kcm_kc}",
            f"--secure-port={ports['kcm']}", "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}",
            "--controllers=*", "--node-monitor-period=1s",
            f"--node-monitor-grace-period={self.grace}s",
            "--allocate-node-cidrs=false", "--v=1", *common])
        sched_kc = self.dir / "scheduler.kubeconfig"
        self._start(state, "kube-scheduler", [
            bins["kube-scheduler"], f"--kubeconfig={sched_kc}",
            f"--authentication-kubeconfig={sched_kc}", f"--authorization-kubeconfig={sched_kc}",
            f"--secure-port={ports['sched']}", "--v=1", *common])
        self.wait("controller-manager and scheduler leading", self._leaders_ready, 120)
        self.wait("service account controller",
                  lambda: self.kubectl("get", "serviceaccount", "default", "-n", "default",
                                       check=False).returncode == 0, 60)
        started = time.monotonic() - t0
        state["started_in_s"] = round(started, 1)
        self.state_file.write_text(json.dumps(state, indent=2))
        log(f"control plane ready in {started:.1f} s at {server}")
        log(f"kubeconfig {self.kubeconfig}, audit log {self.audit_log}")
        if fixture and fixture != "none":
            self.load_fixture(fixture)
        return time.monotonic() - t0

    def _start(self, state: dict, name: str, argv: list[str]) -> None:
        logf = open(self.logs / f"{name}.log", "ab")
        proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                cwd=self.dir)
        logf.close()
        state["pids"][name] = proc.pid
        self.state_file.write_text(json.dumps(state, indent=2))
        log(f"started {name} (pid {proc.pid})")

    def wait(self, what: str, cond, timeout: float, interval: float = 0.3, state=None) -> None:
        """Poll ``cond`` until true; fail early if a component process died. ``state``, a
        callable, says what was seen instead: in the progress lines and in the timeout."""
        deadline = time.monotonic() + timeout
        t0 = time.monotonic()
        last = t0
        while time.monotonic() < deadline:
            dead = [n for n, p in self._state().get("pids", {}).items() if not _alive(p)]
            if dead:
                tail = "".join(_tail(self.logs / f"{n}.log") for n in dead)
                raise RuntimeError(f"{', '.join(dead)} exited while waiting for {what}:\n{tail}")
            if cond():
                return
            if time.monotonic() - last > 10:
                log(f"waiting for {what} ({time.monotonic() - t0:.0f} s)" + (f": {state()}" if state else ""))
                last = time.monotonic()
            time.sleep(interval)
        raise TimeoutError(f"timed out after {timeout} s waiting for {what}" + (f"; seen: {state()}" if state else ""))

    def wait_established(self, *crds: str, timeout: float = 60) -> None:
        """Wait until the CRDs (names, or ``-l <selector>``: arguments of ``kubectl get crd``)
        are Established. kubectl wait fails on a CRD whose status has no conditions yet, as
        right after a large one is created; this waits through that."""
        def established() -> bool:
            r = self.kubectl("get", "crd", *crds, "-o", "json", check=False)
            if r.returncode:
                return False
            got = json.loads(r.stdout)
            items = got["items"] if "items" in got else [got]
            return bool(items) and all(
                any(c.get("type") == "Established" and c.get("status") == "True"
                    for c in (i.get("status") or {}).get("conditions") or []) for i in items)
        self.wait("CRDs established: " + " ".join(crds), established, timeout)

    def _leaders_ready(self) -> bool:
        r = self.kubectl("get", "lease", "-n", "kube-system", "-o", "json", check=False)
        if r.returncode:
            return False
        holders = {i["metadata"]["name"]: i["spec"].get("holderIdentity")
                   for i in json.loads(r.stdout)["items"]}
        return bool(holders.get("kube-controller-manager")) and bool(holders.get("kube-scheduler"))

    def _stop(self, state: dict, name: str) -> None:
        """Stop one process (TERM, then KILL after 15 s) and drop it from the state."""
        pid = state["pids"].pop(name, None)
        if pid and _alive(pid):
            _signal_group(pid, signal.SIGTERM)
            deadline = time.monotonic() + 15
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid):
                _signal_group(pid, signal.SIGKILL)
                time.sleep(0.2)
            log(f"stopped {name} (pid {pid})")
        if self.state_file.exists():
            self.state_file.write_text(json.dumps(state, indent=2))

    def down(self) -> None:
        """Stop every process of this cluster and forget its state."""
        st = self._state()
        for name in reversed(list(st.get("pids", {}))):  # kwoks first, etcd last
            self._stop(st, name)
        self.state_file.unlink(missing_ok=True)
        # A fresh etcd per start: fixtures and tests never see a previous run's objects.
        shutil.rmtree(self.dir / "etcd", ignore_errors=True)

    # ---- kubectl and fixtures ---------------------------------------------------------
    def kubectl(self, *args: str, check: bool = True, input: str | None = None):
        """Run kubectl with this cluster's kubeconfig. A plain ``get ... -o json`` (one
        resource, at most one name, -n/-A/-l/--field-selector) is answered by one GET from
        this process instead (see _get), as kubectl would print it; tests poll with it."""
        r = self._get(args) if input is None else None
        if r is None:
            r = subprocess.run(["kubectl", f"--kubeconfig={self.kubeconfig}", *args],
                               capture_output=True, text=True, input=input, check=False)
        if check and r.returncode:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {r.stderr.strip()}")
        return r

    # kubectl's short flags of ``get`` this fast path understands, and their long forms.
    _GET_FLAGS = {"-n": "namespace", "--namespace": "namespace", "-l": "selector",
                  "--selector": "selector", "--field-selector": "field-selector"}

    def _get(self, args) -> subprocess.CompletedProcess | None:
        """``kubectl get`` as one GET, or None where kubectl must run (anything else)."""
        if not args or args[0] != "get":
            return None
        opts, words, rest = {}, [], list(args[1:])
        while rest:
            arg = rest.pop(0)
            key, eq, value = arg.partition("=")
            if key in ("-o", "--output"):
                opts["output"] = value if eq else (rest.pop(0) if rest else "")
            elif key in self._GET_FLAGS:
                opts[self._GET_FLAGS[key]] = value if eq else (rest.pop(0) if rest else "")
            elif arg in ("-A", "--all-namespaces"):
                opts["all"] = True
            elif arg.startswith("-"):
                return None
            else:
                words.append(arg)
        if opts.get("output") != "json" or not 1 <= len(words) <= 2 or any(
                "," in w or "/" in w for w in words):
            return None
        name = words[1] if len(words) == 2 else None
        if name and (opts.get("all") or "selector" in opts or "field-selector" in opts):
            return None  # kubectl refuses a name with -A or a selector: it says so itself
        argv = ["kubectl", *args]
        for fresh in (False, True):
            try:
                resource = self._resource(words[0], fresh)
            except RuntimeError:
                return None  # no discovery (the API server is not up): kubectl reports it
            if resource is None:
                return None  # unknown to discovery: kubectl says so in its words
            path, kind, api_version, namespaced = resource
            if namespaced and not opts.get("all"):
                path = path.replace("{ns}", "namespaces/%s/" % (opts.get("namespace") or "default"))
            else:
                path = path.replace("{ns}", "")
            url = path + ("/" + urllib.parse.quote(name) if name else "")
            query = {"labelSelector" if k == "selector" else "fieldSelector": opts[k]
                     for k in ("selector", "field-selector") if k in opts and name is None}
            if query:
                url += "?" + urllib.parse.urlencode(query)
            status, body = self.api_get(url, timeout=60)
            try:
                answer = json.loads(body)
            except ValueError:
                answer = {}
            # A 404 that is not "this object is not there" is a stale path (a CRD's served
            # version changed): discover again, as kubectl would, and ask once more.
            if status == 404 and (answer.get("details") or {}).get("name") is None and not fresh:
                continue
            break
        if status != 200:
            message = answer.get("message") or body.strip() or "no answer from %s" % self.server
            reason = answer.get("reason") or "status %s" % status
            return subprocess.CompletedProcess(argv, 1, "", "Error from server (%s): %s\n" % (reason, message))
        got = answer
        for item in got.get("items", []) if name is None else [got]:
            item.get("metadata", {}).pop("managedFields", None)  # --show-managed-fields=false
            if name is None:  # a list's items name their kind, as kubectl prints them
                item.setdefault("apiVersion", api_version)
                item.setdefault("kind", kind)
        if name is None:
            got = {"apiVersion": "v1", "items": got.get("items", []), "kind": "List",
                   "metadata": {"resourceVersion": ""}}
        return subprocess.CompletedProcess(argv, 0, json.dumps(got, indent=4) + "\n", "")

    def _resource(self, word: str, fresh: bool = False):
        """(path template, kind, apiVersion, namespaced) of a kubectl resource word (plural,
        singular, short name or kind, optionally ``.group``), from discovery. An unknown
        word reads discovery again once (a CRD may be new); a word the last discovery did
        not know either is left to kubectl, without a discovery of its own each time."""
        if fresh or getattr(self, "_discovery", None) is None:
            self._discovery, self._unknown = self._discover(), set()
        found = self._match(word)
        if found is None and not fresh and word not in self._unknown:
            self._discovery, self._unknown = self._discover(), set()
            found = self._match(word)
        if found is None:
            self._unknown.add(word)
        return found

    def _match(self, word: str):
        word_l = word.lower()
        for (group, version), res, base in self._discovery:
            names = {res["name"], res.get("singularName") or "", res["kind"].lower(),
                     *(res.get("shortNames") or [])}
            for n in names - {""}:
                if word_l == n or (group and word_l == "%s.%s" % (n, group)):
                    api_version = "%s/%s" % (group, version) if group else version
                    return (base + "/{ns}" + res["name"], res["kind"], api_version, res["namespaced"])
        return None

    def _discover(self):
        """[((group, version), resource, base path)]: the core group first, then the others
        at their preferred version, as kubectl resolves a name."""
        found = []
        status, body = self.api_get("/api/v1")
        if status != 200:
            raise RuntimeError("discovery /api/v1 failed: %s %s" % (status, body[:200]))
        found += [(("", "v1"), r, "/api/v1") for r in json.loads(body)["resources"] if "/" not in r["name"]]
        status, body = self.api_get("/apis")
        if status != 200:
            raise RuntimeError("discovery /apis failed: %s %s" % (status, body[:200]))
        for group in json.loads(body)["groups"]:
            gv = group["preferredVersion"]["groupVersion"]
            status, body = self.api_get("/apis/" + gv)
            if status != 200:
                continue  # an aggregated API that is not serving: kubectl skips it too
            found += [((group["name"], gv.split("/", 1)[1]), r, "/apis/" + gv)
                      for r in json.loads(body)["resources"] if "/" not in r["name"]]
        return found

    def get_json(self, *args: str) -> dict:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def load_fixture(self, name: str | Path, timeout: float = 120) -> None:
        """Replace any loaded fixture with ``name`` (one of tests/fixtures, or the absolute
        path of a folder laid out like them) and wait until its pods are placed."""
        folder = Path(name) if Path(name).is_absolute() else FIXTURES / name
        if not folder.is_dir():
            known = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())
            raise ValueError(f"unknown fixture {name!r}; known: {', '.join(known)}")
        self.unload_fixture()
        log(f"loading fixture {name}")
        self.kubectl("apply", "--server-side", "-f", str(folder))
        st = self._state()
        st["fixture"] = folder.name
        self.state_file.write_text(json.dumps(st, indent=2))
        for node in self.get_json("nodes")["items"]:
            if node["metadata"].get("annotations", {}).get(KWOK_ANNOTATION) == "fake":
                self.manage_node(node["metadata"]["name"])
        self.wait(f"fixture {name}: nodes Ready and pods settled",
                  self._fixture_settled, timeout)
        log(f"fixture {name} loaded")

    def unload_fixture(self) -> None:
        """Delete every fixture object; the nodes' kwoks go last, once their pods are gone."""
        sel = FIXTURE_LABEL
        for node in list(self._state().get("down", [])):
            self.node_up(node)  # a dead kubelet would leave its pods Terminating forever
        r = self.kubectl("get", "namespaces", "-l", sel, "-o", "name", check=False)
        nss = r.stdout.split()
        if nss:
            self.kubectl("delete", *nss, "--wait=true", "--timeout=120s")
        # Objects a fixture puts in namespaces it does not own (kube-system).
        for kind in ("deployments", "daemonsets"):
            self.kubectl("delete", kind, "-A", "-l", sel, "--wait=true", check=False)
        self.kubectl("delete", "nodes", "-l", sel, "--wait=true", check=False)
        st = self._state()
        for node in list(st.get("kwok", {})):
            if self.kubectl("get", "node", node, check=False).returncode:
                self._stop(st, f"kwok-{node}")
                del st["kwok"][node]
        self.state_file.write_text(json.dumps(st, indent=2))

    def manage_node(self, node: str) -> None:
        """Start the kwok process that plays ``node``'s kubelet (heartbeats, Lease, pods).

        One kwok per node, so that one node can fail alone. Its pod IPs come from a
        /24 of its own, and it serves the kubelet API on a free loopback port."""
        st = self._state()
        if f"kwok-{node}" in st["pids"]:
            return
        slot = st["kwok"].setdefault(node, {"cidr": f"10.244.{len(st['kwok'])}.0/24"})
        slot["port"] = free_port()
        # Lease renewal every lease/4 s must beat the node-monitor grace period.
        lease = max(4, self.grace // 3)
        self._start(st, f"kwok-{node}", [
            st["bins"]["kwok"], f"--kubeconfig={self.dir / 'kwok.kubeconfig'}",
            f"--manage-single-node={node}", f"--node-lease-duration-seconds={lease}",
            "--node-ip=127.0.0.1", f"--server-address=127.0.0.1:{slot['port']}",
            f"--cidr={slot['cidr']}", *self._kwok_stages(st)])

    @staticmethod
    def _kwok_stages(st: dict) -> list[str]:
        """``--config`` for kwok's own pod stages and ours (kwok-pod-status-reconcile.yaml:
        the kubelet's status reconcile); any Pod stage given replaces kwok's built-in set."""
        folder = st["bins"].get("kwok-stages")
        if not folder:  # a cluster started before build.sh copied them
            return []
        files = [Path(folder) / f"{s}.yaml" for s in ("pod-ready", "pod-complete", "pod-delete")]
        return [f"--config={f}" for f in (*files, HERE / "kwok-pod-status-reconcile.yaml")]

    def _fixture_settled(self) -> bool:
        nodes = self.get_json("nodes")["items"]
        if not nodes or not all(_ready(n) and not _lifecycle_taints(n) for n in nodes):
            return False
        for d in self.get_json("deployments", "-A")["items"]:
            st = d.get("status", {})
            want = d["spec"].get("replicas", 1)
            if st.get("observedGeneration", 0) < d["metadata"]["generation"]:
                return False
            if st.get("updatedReplicas", 0) != want and want:
                return False
        for ds in self.get_json("daemonsets", "-A")["items"]:
            st = ds.get("status", {})
            if st.get("desiredNumberScheduled") is None or \
                    st.get("numberReady", 0) != st["desiredNumberScheduled"]:
                return False
        pods = self.get_json("pods", "-A")["items"]
        return all(p["status"].get("phase") == "Running" or
                   not p["spec"].get("nodeName") for p in pods)

    # ---- node failure ---------------------------------------------------------------------
    def node_down(self, node: str) -> None:
        """``node``'s kubelet dies: its kwok process is stopped.

        Nothing renews the node's Lease or status any more, and nothing touches its
        pods. After the node-monitor grace period the real node-lifecycle controller
        marks it unreachable and taints it; pods leave after their tolerationSeconds."""
        st = self._state()
        if f"kwok-{node}" not in st.get("pids", {}):
            raise ValueError(f"node {node!r} is not a running kwok node; running: "
                             + ", ".join(sorted(st.get("kwok", {}))))
        self._stop(st, f"kwok-{node}")
        st["down"] = sorted(set(st.get("down", [])) | {node})
        self.state_file.write_text(json.dumps(st, indent=2))
        log(f"node {node} down (its kubelet, kwok, stopped)")

    def node_up(self, node: str) -> None:
        """``node``'s kubelet comes back: kwok takes its Lease and marks it Ready.

        A Node object that was deleted meanwhile (CAPI's ``deleteNode`` when its Machine
        went) is registered again first, as a starting kubelet registers its node: with
        only the labels the kubelet sets itself (``kubernetes.io/hostname``, ``/os``,
        ``/arch``; kubelet's ``initialNode``), no taints, not cordoned. Labels and taints
        a person or a playbook put on the old Node are gone. The fixture label is the
        harness's own (so that unloading the fixture finds the node); kwok takes over
        the rest, as for any fixture node."""
        st = self._state()
        st["down"] = [n for n in st.get("down", []) if n != node]
        self.state_file.write_text(json.dumps(st, indent=2))
        if self.api_get(f"/api/v1/nodes/{node}")[0] == 404:
            self.register_node(node, st.get("fixture"))
        self.manage_node(node)
        log(f"node {node} up (kwok started again)")

    def forget_node(self, node: str) -> None:
        """A node a test added is gone for good: its kwok stopped, its Node deleted."""
        st = self._state()
        if f"kwok-{node}" in st.get("pids", {}):
            self._stop(st, f"kwok-{node}")
        st.get("kwok", {}).pop(node, None)
        st["down"] = [n for n in st.get("down", []) if n != node]
        self.state_file.write_text(json.dumps(st, indent=2))
        self.kubectl("delete", "node", node, "--ignore-not-found", "--wait=true")

    def node_ready(self, node: str) -> bool:
        """Whether ``node`` is Ready; False while it has no Node object (deleted, not registered yet)."""
        status, body = self.api_get(f"/api/v1/nodes/{node}")
        return status == 200 and _ready(json.loads(body))

    def register_node(self, node: str, fixture: str | None) -> None:
        """Create ``node`` as its kubelet registers it (see ``node_up``)."""
        labels = {"kubernetes.io/hostname": node, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}
        if fixture:
            labels[FIXTURE_LABEL] = fixture
        self.kubectl("create", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": node, "labels": labels,
                         "annotations": {KWOK_ANNOTATION: "fake", ATTACH_DETACH_ANNOTATION: "true"}}}))
        log(f"node {node} registered again (kubelet labels only)")


def _lifecycle_taints(node: dict) -> list[str]:
    """The node-lifecycle controller's taints still on ``node``: it removes them on its
    first monitor pass after the node is Ready, up to a node-monitor period later."""
    return [t["key"] for t in node.get("spec", {}).get("taints", [])
            if t["key"] in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")]


def _ready(node: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in node.get("status", {}).get("conditions", []))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except OSError:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except (OSError, ValueError):
        return False


def _tail(path: Path, n: int = 15) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()[-n:]
    except OSError:
        return ""
    return f"--- {path.name} ---\n" + "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--dir", default=str(DEFAULT_DIR))
    ap.add_argument("--grace", type=int, default=None,
                    help="node-monitor grace period in seconds (default $NODE_MONITOR_GRACE or 12)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("up")
    p.add_argument("--fixture", default="none")
    sub.add_parser("down")
    sub.add_parser("status")
    sub.add_parser("build")
    for name in ("load-fixture", "node-down", "node-up"):
        sub.add_parser(name).add_argument("name")
    a = ap.parse_args(argv)
    c = LocalCluster(a.dir, node_monitor_grace=a.grace)
    try:
        if a.cmd == "up":
            c.up(a.fixture)
        elif a.cmd == "down":
            c.down()
        elif a.cmd == "build":
            for k, v in build_binaries().items():
                print(f"{k}={v}")
        elif a.cmd == "status":
            up = c.is_up()
            print(json.dumps({"up": up, **c._state()}, indent=2))
            return 0 if up else 1
        elif a.cmd == "load-fixture":
            c.load_fixture(a.name)
        elif a.cmd == "node-down":
            c.node_down(a.name)
        elif a.cmd == "node-up":
            c.node_up(a.name)
    except (RuntimeError, TimeoutError, ValueError, subprocess.CalledProcessError) as e:
        log(f"error: {e}")
        if a.cmd == "up":
            c.down()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
