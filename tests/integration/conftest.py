"""Integration tests run against the real local control plane (tests/cluster/).

One cluster serves a whole session. If `make cluster-up` already started one at
.local/cluster it is reused and left running; otherwise the session starts one and
stops it at the end. A test module asks for a fixture cluster by name
(``two_node`` / ``three_worker``); loading one replaces whatever was loaded.

Run with pytest-xdist (``-n 2``, as ``make integration`` does), each worker has a cluster
of its own: gw0 the one at .local/cluster (HOMELAB_CLUSTER_DIR), gw1 .local/cluster-gw1,
and so on. A test module is one unit of work (its module-scoped fixtures load once);
the modules that run the documented commands go to gw0, because those commands name
.local/cluster (``export KUBECONFIG=$PWD/.local/cluster/kubeconfig``). The heaviest
modules start first (LONGEST_FIRST), so the workers end close together."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
if WORKER != "gw0":
    # before localcluster is imported: its DEFAULT_DIR, the simulators, talosctl's stand-in
    # and the local inventories' kubeconfig all follow HOMELAB_CLUSTER_DIR
    os.environ["HOMELAB_CLUSTER_DIR"] = "%s-%s" % (
        os.environ.get("HOMELAB_CLUSTER_DIR", str(ROOT / ".local" / "cluster")), WORKER)
sys.path.insert(0, str(ROOT / "tests" / "cluster"))
sys.path.insert(0, str(ROOT / "tests" / "simulators"))

from localcluster import FIXTURE_LABEL, LocalCluster  # noqa: E402  pylint: disable=wrong-import-position
sys.path.insert(0, str(ROOT / "tests"))
from doc_commands import warning_lines  # noqa: E402  pylint: disable=wrong-import-position
from longhorn_simulator import Running  # noqa: E402  pylint: disable=wrong-import-position
import timing  # noqa: E402  pylint: disable=wrong-import-position


# Modules that must run on gw0's cluster (.local/cluster): their commands name that path.
ON_GW0 = ("test_doc_commands.py", "test_your_cluster.py")
# Modules by their measured time, longest first (docs/testing.md, .local/test-times.md);
# the others follow in file order.
LONGEST_FIRST = ("test_doc_commands.py", "test_active_passive.py", "test_app_migration_failover.py",
                 "test_core_platform.py", "test_phase0_guardrails.py", "test_app_migration.py",
                 "test_capi_rollout.py", "test_longhorn_volume_replicas.py", "test_capi_machine_remediate.py",
                 "test_linstor_evacuate.py", "test_app_gates.py", "test_cluster_lock.py",
                 "test_longhorn_settings.py", "test_phase0_overlay.py", "test_control_plane.py",
                 "test_your_cluster.py")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Modules as units of work, longest first; ON_GW0's only to gw0. xdist hands a node the
    first unit of its queue: this moves the one the node should take to the front."""
    from xdist.scheduler import LoadScopeScheduling  # pylint: disable=import-outside-toplevel

    def file_of(scope):
        return scope.rsplit("/", 1)[-1]

    def rank(scope):
        name = file_of(scope)
        return (name not in ON_GW0, LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST))

    class Scheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return nodeid.split("::", 1)[0]  # the module

        def _assign_work_unit(self, node):
            fits = [s for s in self.workqueue if node.gateway.id == "gw0" or file_of(s) not in ON_GW0]
            if not fits:
                if not self._pending_of(self.assigned_work.get(node, {})):
                    node.shutdown()  # what is left is gw0's
                return
            self.workqueue.move_to_end(min(fits, key=rank), last=False)
            super()._assign_work_unit(node)

    return Scheduling(config, log)


def pytest_sessionstart(session):  # pylint: disable=unused-argument
    timing.install(LocalCluster)


def pytest_sessionfinish(session):
    """A worker hands its matrix rows and test times to the controller (pytest_testnodedown)."""
    from proof import MATRIX  # pylint: disable=import-outside-toplevel

    out = getattr(session.config, "workeroutput", None)
    if out is not None:
        out["matrix"] = [dict(r.__dict__) for r in MATRIX]
        out["timing"] = timing.export()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):  # pylint: disable=unused-argument
    from proof import MATRIX, Row  # pylint: disable=import-outside-toplevel

    got = getattr(node, "workeroutput", {}) or {}
    for fields in got.get("matrix", []):
        row = Row(fields["scenario"])
        row.__dict__.update(fields)
        MATRIX.append(row)
    timing.merge(got.get("timing"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):  # pylint: disable=unused-argument
    """Each test's wall time (setup, call, teardown) and its parts (timing.py)."""
    timing.start(item.nodeid)
    yield
    timing.stop()


@pytest.fixture(scope="session")
def cluster():
    c = LocalCluster()
    started = False
    if not c.is_up():
        c.up()
        started = True
    c.loaded = None
    yield c
    if started:
        c.down()


def _fixture_state(cluster):
    """What a module may expect of a loaded fixture: its workloads' replicas and pod
    templates, and every node's labels, taints and cordon. The taints the node controllers
    manage (``node.kubernetes.io/*``: not-ready, unreachable, the cordon's own) come and go
    with a node's health and are left out. Not covered: objects a test adds beside the
    fixture's (PDBs, CronJobs); each test removes its own."""
    state = {}
    for kind in ("deployments", "daemonsets"):
        for d in cluster.get_json(kind, "-A", "-l", FIXTURE_LABEL)["items"]:
            state["%s/%s/%s" % (kind, d["metadata"]["namespace"], d["metadata"]["name"])] = (
                d["spec"].get("replicas"), d["spec"]["template"])
    for n in cluster.get_json("nodes")["items"]:
        state["node/" + n["metadata"]["name"]] = (
            n["metadata"].get("labels", {}), bool(n["spec"].get("unschedulable")),
            sorted((t["key"], t.get("value"), t["effect"]) for t in n["spec"].get("taints", [])
                   if not t["key"].startswith("node.kubernetes.io/")))
    return state


def _load(cluster, name):
    """Load the fixture, or reuse it as the module before left it if that is as loaded: a
    module that left a workload or a node changed (a test that failed half-way, a rollback
    it does not run) would otherwise change what the next module on this worker sees."""
    if cluster.loaded == name and _fixture_state(cluster) != cluster.loaded_state:
        changed = sorted(k for k, v in _fixture_state(cluster).items() if cluster.loaded_state.get(k) != v)
        sys.stderr.write("[conftest] fixture %s left changed (%s): loading it again\n" % (name, ", ".join(changed)))
        cluster.loaded = None
    if cluster.loaded != name:
        cluster.load_fixture(name)
        cluster.loaded = name
        cluster.loaded_state = _fixture_state(cluster)
    return cluster


@pytest.fixture(scope="module")
def two_node(cluster):
    return _load(cluster, "two-node")


@pytest.fixture(scope="module")
def three_worker(cluster):
    return _load(cluster, "three-worker")


@pytest.fixture
def longhorn(two_node):
    """The two-node cluster with the Longhorn simulator and its objects (settings as a
    fresh Longhorn 1.10 stores them, six volumes with one replica each on miniserver)."""
    sim = Running(two_node).start()
    yield sim
    sim.stop()


class PlaybookRun(object):
    def __init__(self, proc, result):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.result = result


class Identity(object):
    """A ServiceAccount bound only to the ClusterRole of one playbook family (rbac/<family>.yml),
    and a token of it, handed to playbooks the way AWX's Kubernetes credential does: the
    K8S_AUTH_* environment, no kubeconfig."""

    def __init__(self, cluster, family):
        self.family = family
        self.sa = "homelab-" + family
        self.username = "system:serviceaccount:%s:%s" % (OPERATORS_NS, self.sa)
        cluster.kubectl("apply", "-f", str(ROOT / "rbac" / (family + ".yml")))
        cluster.kubectl("create", "namespace", OPERATORS_NS, check=False)
        cluster.kubectl("create", "serviceaccount", self.sa, "-n", OPERATORS_NS, check=False)
        cluster.kubectl("create", "clusterrolebinding", self.sa, "--clusterrole=homelab-k8s-ha-" + family,
                        "--serviceaccount=%s:%s" % (OPERATORS_NS, self.sa), check=False)
        self.token = cluster.kubectl("create", "token", self.sa, "-n", OPERATORS_NS, "--duration=2h").stdout.strip()
        assert len(self.token) > 100, "no token for " + self.sa
        self.env = {"K8S_AUTH_HOST": cluster.server, "K8S_AUTH_API_KEY": self.token,
                    "K8S_AUTH_SSL_CA_CERT": str(cluster.pki / "ca.crt"), "K8S_AUTH_VERIFY_SSL": "true"}
        # the same credential as a kubeconfig dict (what homelab_kubeconfig may carry)
        self.kubeconfig = {
            "apiVersion": "v1", "kind": "Config", "current-context": self.sa,
            "clusters": [{"name": "local", "cluster": {"server": cluster.server,
                                                       "certificate-authority": str(cluster.pki / "ca.crt")}}],
            "users": [{"name": self.sa, "user": {"token": self.token}}],
            "contexts": [{"name": self.sa, "context": {"cluster": "local", "user": self.sa}}]}


OPERATORS_NS = "homelab-operators"
NOT_INTERACTIVE = "Not waiting for response to prompt as stdin is not interactive"


@pytest.fixture
def playbook_identity():
    """Who runs the playbooks of a test: None is the fixture's cluster-admin kubeconfig.
    A test module overrides this fixture to run every playbook as a family's
    least-privilege ServiceAccount (``identity("guardrails")``)."""
    return None


@pytest.fixture
def identity(cluster):
    return lambda family: Identity(cluster, family)


def _leaks(secret, texts, folder):
    """Where ``secret`` shows up: in the given texts or in any file under ``folder``."""
    found = [name for name, text in texts.items() if secret in text]
    if folder and Path(folder).is_dir():
        found += [str(p) for p in Path(folder).rglob("*") if p.is_file() and secret in p.read_text(errors="replace")]
    return found


@pytest.fixture
def run_playbook(tmp_path, playbook_identity):
    """Run a playbook against the cluster; ``result`` is what it wrote to $RESULT_DIR/result.json.
    With a ``playbook_identity`` the run gets only that ServiceAccount's token through
    K8S_AUTH_* (no kubeconfig anywhere), runs with -v, and its output and evidence are
    searched for the token: finding it fails the test."""

    def run(cluster, playbook, inventory="local", extra_vars=None, check=False, args=()):
        folder = tmp_path / "result"  # written anew by each run (evidence_folder wants no folder there)
        shutil.rmtree(folder, ignore_errors=True)
        out = folder / "result.json"
        env = dict(cluster.env(),
                   ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".local" / "collections"),
                   ANSIBLE_LOCALHOST_WARNING="false", RESULT_DIR=str(folder),
                   ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_SHOW_CUSTOM_STATS="true")
        cmd = [str(Path(sys.executable).with_name("ansible-playbook")),
               "-i", str(ROOT / "inventories" / inventory), str(ROOT / playbook)]
        extra_vars = dict(extra_vars or {})
        if playbook_identity is not None:
            for k in ("KUBECONFIG", "K8S_AUTH_KUBECONFIG"):
                env.pop(k, None)
            env.update(playbook_identity.env)
            extra_vars["homelab_kubeconfig"] = None
            cmd.append("-v")
        for k, v in extra_vars.items():
            cmd += ["-e", json.dumps({k: v})]
        if check:
            cmd += ["--check", "--diff"]
        cmd += list(args)
        # no terminal, as under AWX, Semaphore and CI: a prompt gets an empty answer
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT,
                              stdin=subprocess.DEVNULL, check=False)
        result = json.loads(out.read_text()) if out.exists() else None
        # every playbook of the collection (playbooks/, what a person runs; not the tests'
        # own harness playbooks), in check mode and applied: no warning
        said = proc.stdout + proc.stderr
        warned = warning_lines(said)
        if not str(playbook).startswith("playbooks/"):
            warned = []
        if not check and "approve_plan" not in extra_vars:
            # the one warning a run may print: ansible's pause says it cannot prompt without a
            # terminal, and the gate then refuses (the fail-closed path these runs test)
            warned = [line for line in warned if NOT_INTERACTIVE not in line]
        assert not warned, "%s warned:\n%s" % (playbook, "\n".join(warned))
        if playbook_identity is not None:
            leaks = _leaks(playbook_identity.token, {"stdout": proc.stdout, "stderr": proc.stderr},
                           extra_vars.get("evidence_root"))
            assert leaks == [], "the token of %s leaked into %s" % (playbook_identity.sa, leaks)
        return PlaybookRun(proc, result)

    return run


@pytest.fixture(scope="module")
def talos_capi(cluster):
    """The talos-capi cluster (cp-1, worker-1, worker-2) with the CAPI simulator and
    its objects: a Cluster, a TalosControlPlane, a MachineDeployment, three Machines."""
    from capi_simulator import CapiSimulator

    _load(cluster, "talos-capi")
    sim = CapiSimulator(cluster).start()
    yield sim
    sim.stop()


def pytest_terminal_summary(terminalreporter):
    """The safety proof matrix (proof.py) of the scenarios that ran, as docs/testing.md
    shows it; also written to .local/safety-matrix.md."""
    from proof import MATRIX, markdown  # pylint: disable=import-outside-toplevel

    if hasattr(terminalreporter.config, "workeroutput"):
        return  # an xdist worker: the controller prints the whole run's
    if timing.TOTAL:
        times = timing.table(15)
        terminalreporter.write_sep("=", "where the slowest tests spent their time (timing.py)")
        terminalreporter.write_line(times)
        (ROOT / ".local").mkdir(exist_ok=True)
        (ROOT / ".local" / "test-times.md").write_text(times + "\n\n" + timing.modules() + "\n")
    if not MATRIX:
        return
    text = markdown()
    terminalreporter.write_sep("=", "safety proof matrix (%d scenarios)" % len(MATRIX))
    terminalreporter.write_line(text)
    out = ROOT / ".local" / "safety-matrix.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text + "\n")
