"""cluster_lock on the real API server: the rollout mutex as a Lease. One holder at a
time (also when two runs start together), takeover only after expiry, release only by
the holder, renewal by a waiting module, and check mode writes nothing."""

import datetime
import json
import subprocess
import sys
from pathlib import Path

import pytest

from observe import audit_entries, audit_size, writes

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = "tests/integration/playbooks/capi_modules.yml"
NS = "capi-lock-test"
LEASE = "capi-rollout-%s-homelab" % NS


@pytest.fixture
def ns(cluster):
    """A fresh namespace for the Lease (the previous test's may still be terminating)."""
    cluster.kubectl("delete", "namespace", NS, "--ignore-not-found", "--wait=true", "--timeout=60s")
    cluster.kubectl("create", "namespace", NS)
    yield cluster
    cluster.kubectl("delete", "namespace", NS, "--wait=false")


def lock(run_playbook, c, holder, check=False, **extra):
    args = dict(namespace=NS, cluster="homelab", holder=holder, **extra)
    r = run_playbook(c, PLAYBOOK, extra_vars={"lock_args": args}, check=check)
    assert r.result is not None, r.stdout + r.stderr
    return r.result


def lease(c):
    r = c.kubectl("get", "lease", LEASE, "-n", NS, "-o", "json", check=False)
    return json.loads(r.stdout) if r.returncode == 0 else None


def test_one_holder_release_by_holder_only_and_check_mode(ns, run_playbook):
    c = ns
    offset = audit_size(c)
    r = lock(run_playbook, c, "run-a", check=True)
    assert r["action"] == "create" and r["changed"] is True and not r.get("failed")
    assert lease(c) is None and writes(c, offset, "leases") == []

    r = lock(run_playbook, c, "run-a", duration_seconds=120)
    assert r["action"] == "create" and r["lease"] == {"name": LEASE, "namespace": NS}
    spec = lease(c)["spec"]
    assert spec["holderIdentity"] == "run-a" and spec["leaseDurationSeconds"] == 120

    r = lock(run_playbook, c, "run-b")
    assert r["failed"] is True
    assert "held by run-a" in r["msg"] and "another rollout of this cluster is running" in r["msg"]
    r = lock(run_playbook, c, "run-b", check=True)
    assert r["action"] == "wait" and r["held_by"] == "run-a" and r["changed"] is False

    r = lock(run_playbook, c, "run-b", state="absent")
    assert r["changed"] is False and r["holder_now"] == "run-a" and lease(c)["spec"]["holderIdentity"] == "run-a"
    r = lock(run_playbook, c, "run-a")
    assert r["action"] == "renew" and r["changed"] is False

    offset = audit_size(c)
    r = lock(run_playbook, c, "run-a", state="absent")
    assert r["changed"] is True and r["action"] == "release" and lease(c) is None
    deletes = writes(c, offset, "leases")
    assert [e["verb"] for e in deletes] == ["delete"]


def test_an_expired_lock_of_a_dead_holder_is_taken_over(ns, run_playbook):
    c = ns
    stale = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=400))
    stamp = stale.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    c.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": LEASE, "namespace": NS},
        "spec": {"holderIdentity": "dead-run", "leaseDurationSeconds": 300, "acquireTime": stamp,
                 "renewTime": stamp, "leaseTransitions": 4}}))
    r = lock(run_playbook, c, "run-c")
    assert r["action"] == "takeover" and r["previous_holder"] == "dead-run"
    spec = lease(c)["spec"]
    assert spec["holderIdentity"] == "run-c" and spec["leaseTransitions"] == 5


def test_two_runs_at_once_exactly_one_holds_the_lock(ns, run_playbook, tmp_path):
    c = ns
    procs = []
    for holder in ("run-x", "run-y"):
        out = tmp_path / holder / "result.json"
        env = dict(c.env(), ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".local" / "collections"),
                   RESULT_DIR=str(out.parent), ANSIBLE_NOCOLOR="1")
        args = {"lock_args": {"namespace": NS, "cluster": "homelab", "holder": holder}}
        procs.append((holder, out, subprocess.Popen(
            [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(ROOT / "inventories" / "local"),
             str(ROOT / PLAYBOOK), "-e", json.dumps(args)], env=env, cwd=ROOT,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
    results = {}
    for holder, out, p in procs:
        p.communicate(timeout=120)
        results[holder] = json.loads(out.read_text())
    won = [h for h, r in results.items() if not r.get("failed")]
    lost = [h for h, r in results.items() if r.get("failed")]
    assert len(won) == 1 and len(lost) == 1, results
    assert lease(c)["spec"]["holderIdentity"] == won[0]
    assert "held by %s" % won[0] in results[lost[0]]["msg"]


def test_a_waiting_module_stops_before_acting_when_the_lock_is_not_its_own(ns, run_playbook):
    from linstor_simulator import LinstorSimulator

    c = ns
    assert not lock(run_playbook, c, "run-a").get("failed")
    sim = LinstorSimulator(["w1", "w2"], {"pvc-a": ["w1"]}).start()
    try:
        args = {"action": "evacuate", "node": "w1", "controller_url": sim.url,
                "lock": {"name": LEASE, "namespace": NS, "holder": "run-b"}}
        r = run_playbook(c, PLAYBOOK, extra_vars={"linstor_args": args}).result
        assert r["failed"] is True and "held by run-a now" in r["msg"] and "nothing was done" in r["msg"]
        assert sim.puts() == []
        args["lock"]["holder"] = "run-a"
        args.update(poll_interval=0.2)
        r = run_playbook(c, PLAYBOOK, extra_vars={"linstor_args": args}).result
        assert not r.get("failed"), r
        assert lease(c)["spec"]["holderIdentity"] == "run-a"
    finally:
        sim.stop()


def test_a_namespace_that_does_not_exist_fails_at_once(cluster, run_playbook):
    """Before, every create was refused with 404 and asked again, about 25 times a second,
    wait_timeout or not, for ever. Now the first refusal ends the run, naming the namespace."""
    c = cluster
    offset = audit_size(c)
    r = run_playbook(c, PLAYBOOK, extra_vars={"lock_args": dict(
        namespace="no-such-namespace", cluster="homelab", holder="run-a", wait_timeout=0)}).result
    assert r["failed"] is True
    assert r["msg"] == ("Cannot take the lock no-such-namespace/capi-rollout-no-such-namespace-homelab: namespace "
                        "no-such-namespace does not exist (HTTP 404 on create). Create it, or give the lock a "
                        "namespace that exists; nothing was written.")
    tries = [e for e in audit_entries(c, offset) if e["verb"] == "create"
             and e["objectRef"].get("resource") == "leases" and e["objectRef"].get("namespace") == "no-such-namespace"]
    assert len(tries) == 1 and tries[0]["responseStatus"]["code"] == 404, tries
    assert writes(c, offset, "leases") == tries  # the refused create is the only request that tried to write
