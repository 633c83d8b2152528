"""Integration tests run against the real local control plane (tests/cluster/).

One cluster serves the whole session. If `make cluster-up` already started one at
.local/cluster it is reused and left running; otherwise the session starts one and
stops it at the end. A test module asks for a fixture cluster by name
(``two_node`` / ``three_worker``); loading one replaces whatever was loaded."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "cluster"))
sys.path.insert(0, str(ROOT / "tests" / "simulators"))

from localcluster import LocalCluster  # noqa: E402  pylint: disable=wrong-import-position
from longhorn_simulator import Running  # noqa: E402  pylint: disable=wrong-import-position


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


def _load(cluster, name):
    if cluster.loaded != name:
        cluster.load_fixture(name)
        cluster.loaded = name
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


@pytest.fixture
def run_playbook(tmp_path):
    """Run a playbook against the cluster; ``result`` is what it wrote to $RESULT_FILE."""

    def run(cluster, playbook, inventory="local", extra_vars=None, check=False):
        out = tmp_path / "result.json"
        env = dict(cluster.env(),
                   ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".local" / "collections"),
                   ANSIBLE_LOCALHOST_WARNING="false", RESULT_FILE=str(out),
                   ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
        cmd = [str(Path(sys.executable).with_name("ansible-playbook")),
               "-i", str(ROOT / "inventories" / inventory), str(ROOT / playbook)]
        for k, v in (extra_vars or {}).items():
            cmd += ["-e", json.dumps({k: v})]
        if check:
            cmd += ["--check", "--diff"]
        # no terminal, as under AWX, Semaphore and CI: a prompt gets an empty answer
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT,
                              stdin=subprocess.DEVNULL, check=False)
        result = json.loads(out.read_text()) if out.exists() else None
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
