"""linstor_evacuate through python-linstor against the LINSTOR controller simulator
(tests/simulators/linstor_simulator.py): check mode sends no PUT, the evacuation waits
for the asynchronous moves, the guards stop before anything is sent, restore is
idempotent, settle fails explicitly when a resync never ends."""

import pytest

from linstor_simulator import LinstorSimulator

PLAYBOOK = "tests/integration/playbooks/capi_modules.yml"
NODES = ["cp-1", "worker-1", "worker-2"]
RESOURCES = {"pvc-a": ["cp-1", "worker-1"], "pvc-b": ["worker-1", "worker-2"], "pvc-c": ["cp-1", "worker-2"]}


@pytest.fixture
def sim():
    s = LinstorSimulator(NODES, RESOURCES, sync_seconds=1.0, delete_seconds=0.5).start()
    yield s
    s.stop()


@pytest.fixture
def linstor(cluster, run_playbook, sim):
    def run(check=False, **args):
        args.setdefault("controller_url", sim.url)
        args.setdefault("poll_interval", 0.2)
        r = run_playbook(cluster, PLAYBOOK, extra_vars={"linstor_args": args}, check=check)
        assert r.rc == 0 and r.result is not None, r.stdout + r.stderr
        return r.result
    return run


def test_check_mode_sends_no_put_and_says_what_would_happen(sim, linstor):
    r = linstor(check=True, action="evacuate", node="worker-1")
    assert not r.get("failed"), r
    assert r["changed"] is True and r["evacuate_sent"] is False
    assert [x["resource"] for x in r["remaining"]] == ["pvc-a", "pvc-b"]
    assert r["diff"]["after"]["node worker-1 flags"] == ["EVACUATE"]
    r = linstor(check=True, action="settle")
    assert r["unsettled"] == [] and r["faulty"] == []
    assert sim.puts() == []
    assert sim.on_node("worker-1") == ["pvc-a", "pvc-b"]


def test_evacuate_restore_settle_in_order_and_idempotent(sim, linstor):
    r = linstor(action="check", node="worker-1")
    assert not r.get("failed") and r["faulty"] == [] and r["changed"] is False

    r = linstor(action="evacuate", node="worker-1", evacuation_timeout="60s")
    assert not r.get("failed"), r
    assert r["evacuate_sent"] is True and r["remaining"] == [] and r["node_flags"] == ["EVACUATE"]
    assert sim.on_node("worker-1") == []
    # each resource got its new replica UpToDate before its source on worker-1 went
    h = sim.history
    for rsc in ("pvc-a", "pvc-b"):
        created = next(e["t"] for e in h if e["event"] == "replica-created" and e["resource"] == rsc)
        synced = next(e["t"] for e in h if e["event"] == "synced" and e["resource"] == rsc)
        deleted = next(e["t"] for e in h if e["event"] == "deleted" and e["resource"] == rsc
                       and e["node"] == "worker-1")
        assert created < synced < deleted
    assert [p["path"] for p in sim.puts()] == ["/v1/nodes/worker-1/evacuate"]

    again = linstor(action="evacuate", node="worker-1")
    assert again["evacuate_sent"] is False and again["changed"] is False
    assert len(sim.puts()) == 1  # an evacuating node is not evacuated twice

    r = linstor(action="restore", node="worker-1")
    assert r["restore_sent"] is True and r["node_flags"] == [] and r["changed"] is True
    r = linstor(action="restore", node="worker-1")
    assert r["restore_sent"] is False and r["changed"] is False
    assert [p["path"] for p in sim.puts()] == ["/v1/nodes/worker-1/evacuate", "/v1/nodes/worker-1/restore"]

    r = linstor(action="settle", settle_timeout="30s")
    assert not r.get("failed") and r["unsettled"] == [] and r["faulty"] == []


def test_evacuate_in_two_steps_sent_then_waited_for(sim, linstor):
    """The role's phases: evacuate with wait=false returns once the PUT is sent (the
    resources still there), wait_evacuated sends nothing and waits until they are gone."""
    r = linstor(check=True, action="wait_evacuated", node="worker-1")
    assert r["failed"] is True and "node worker-1 is not evacuating (flags: none)" in r["msg"], r
    r = linstor(action="evacuate", node="worker-1", wait=False)
    assert not r.get("failed"), r
    assert r["evacuate_sent"] is True and r["changed"] is True and r["node_flags"] == ["EVACUATE"]
    assert [x["resource"] for x in r["remaining"]] == ["pvc-a", "pvc-b"]
    assert "not waiting: 2 left: pvc-a, pvc-b (action=wait_evacuated waits)" in [e["event"] for e in r["events"]]
    r = linstor(check=True, action="wait_evacuated", node="worker-1")
    assert not r.get("failed") and r["changed"] is False, r
    r = linstor(action="wait_evacuated", node="worker-1", evacuation_timeout="60s")
    assert not r.get("failed"), r
    assert r["remaining"] == [] and r["changed"] is False and r["node_flags"] == ["EVACUATE"]
    assert r["events"][-1]["event"] == "resources of lvm-thick on worker-1: 0 left"
    assert sim.on_node("worker-1") == []
    assert [p["path"] for p in sim.puts()] == ["/v1/nodes/worker-1/evacuate"]


def test_faulty_linstor_stops_the_evacuation_before_any_put(sim, linstor):
    sim.set_fault(faulty=["pvc-c@worker-2"])
    r = linstor(action="evacuate", node="worker-1")
    assert r["failed"] is True
    assert "refusing to evacuate worker-1" in r["msg"] and "pvc-c on worker-2: Outdated" in r["msg"]
    assert r["faulty"] == [{"resource": "pvc-c", "node": "worker-2", "state": "Outdated", "connections": []}]
    r = linstor(action="check")
    assert r["failed"] is True and "1 faulty resource" in r["msg"]
    assert sim.puts() == []


def test_an_evacuation_linstor_refuses_to_place_fails_at_once(sim, linstor):
    """No node can take worker-1's resources: LINSTOR answers 200 with WARN_NOT_EVACUATING for
    each and flags the node all the same; the module stops at once instead of waiting."""
    sim.set_fault(block_evacuation=["worker-1"])
    r = linstor(action="evacuate", node="worker-1", evacuation_timeout="10m")
    assert r["failed"] is True and r["evacuate_sent"] is True and r["node_flags"] == ["EVACUATE"]
    assert ("node evacuate worker-1: LINSTOR will not evacuate 2 resource(s): Resource 'pvc-a' cannot be evacuated"
            " as no available storage pool was found | Resource 'pvc-b' cannot be evacuated") in r["msg"], r["msg"]
    assert "restore worker-1 (action=restore" in r["msg"]
    assert [e["event"] for e in sim.history] == ["no-target", "no-target", "evacuate"]  # no poll: one PUT, done
    assert sim.on_node("worker-1") == ["pvc-a", "pvc-b"]


def test_an_evacuation_held_by_a_replica_in_use_fails_at_its_timeout_naming_it(sim, linstor):
    """A pod on worker-1 still uses its volumes (DRBD Primary): LINSTOR makes the new replicas
    but keeps the sources until nothing uses them (waitForMigration). The wait runs out and
    says why; once the pod is gone the evacuation finishes."""
    sim.set_fault(in_use=["worker-1"])
    r = linstor(action="evacuate", node="worker-1", evacuation_timeout="3s")
    assert r["failed"] is True
    assert "did not finish within 3s" in r["msg"] and "pvc-a (UpToDate, Evacuating, InUse)" in r["msg"]
    assert "a pod on worker-1 still uses pvc-a, pvc-b: stop it or move it first" in r["msg"], r["msg"]
    assert [x["resource"] for x in r["remaining"]] == ["pvc-a", "pvc-b"]
    assert len([e for e in sim.history if e["event"] == "synced"]) == 2  # both copies made, UpToDate
    assert [e["event"] for e in sim.history if e["event"] in ("source-in-use", "deleted")] == ["source-in-use"] * 2
    assert sim.on_node("worker-1") == ["pvc-a", "pvc-b"]
    sim.set_fault(in_use=[])
    r = linstor(action="wait_evacuated", node="worker-1", evacuation_timeout="30s")
    assert not r.get("failed") and r["remaining"] == [], r
    assert sim.on_node("worker-1") == []


def test_settle_times_out_explicitly_when_a_resync_never_ends(sim, linstor):
    sim.set_fault(stuck_sync=["worker-2"])
    sim.handle("POST", "/sim/reboot/worker-2?seconds=0.5", None)
    r = linstor(action="settle", settle_timeout="4s")
    assert r["failed"] is True
    assert "did not settle within 4s" in r["msg"] and "SyncTarget" in r["msg"]
    assert {x["node"] for x in r["unsettled"]} >= {"worker-2"}


def test_refusals_and_bad_input_carry_the_controllers_message(sim, linstor):
    sim.set_fault(refuse=["evacuate"])
    r = linstor(action="evacuate", node="worker-1")
    assert r["failed"] is True and "injected fault" in r["msg"] and "simulator fault 'refuse'" in r["msg"]
    r = linstor(action="restore", node="worker-9")
    assert r["failed"] is True and "node: 'worker-9' is not a LINSTOR node; known nodes: cp-1, worker-1, worker-2" in r["msg"]
    r = linstor(action="settle", settle_timeout="soon")
    assert r["failed"] is True and "settle_timeout: 'soon' is not a duration" in r["msg"]
    r = linstor(action="check", controller_url="http://127.0.0.1:1")
    assert r["failed"] is True and "cannot reach the LINSTOR controller at http://127.0.0.1:1" in r["msg"]
    assert [(p["path"], p["status"]) for p in sim.puts()] == [("/v1/nodes/worker-1/evacuate", 500)]


def test_the_controller_url_is_found_from_the_piraeus_service(cluster, linstor):
    ns = "piraeus-sim"
    cluster.kubectl("create", "namespace", ns)
    try:
        r = linstor(action="check", controller_url=None, linstor_namespace=ns)
        assert r["failed"] is True and "namespace piraeus-sim has no Service linstor-controller" in r["msg"]
        cluster.kubectl("create", "service", "clusterip", "linstor-controller", "-n", ns, "--tcp=3370:3370")
        r = linstor(action="check", controller_url=None, linstor_namespace=ns, request_timeout=3)
        # found; this machine cannot resolve cluster DNS, so the connection fails naming the URL
        assert r["failed"] is True
        assert "http://linstor-controller.piraeus-sim.svc:3370" in r["msg"]
    finally:
        cluster.kubectl("delete", "namespace", ns, "--wait=false")
