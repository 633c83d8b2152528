import pytest

from ansible_collections.homelab.k8s_ha.plugins.module_utils import linstor as L


def vol(disk="UpToDate", pool="lvm-thick", drbd=True, repl=None):
    v = {"volume_number": 0, "storage_pool_name": pool,
         "layer_data_list": [{"type": "DRBD"}, {"type": "STORAGE"}] if drbd else [{"type": "STORAGE"}],
         "state": {"disk_state": disk} if disk else {}}
    if repl:
        v["state"]["replication_states"] = repl
    return v


def rsc(name="pvc-a", node="w1", flags=(), vols=None, conns=None):
    return {"name": name, "node_name": node, "flags": list(flags),
            "volumes": [vol()] if vols is None else vols,
            "layer_object": {"type": "DRBD", "drbd": {"connections": conns or {}}}}


ERROR = (0xC000000000000000 | 11) - (1 << 64)  # as the Java controller sends it: signed


def test_error_bit_of_signed_ret_codes():
    assert L.is_error({"ret_code": ERROR})
    assert not L.is_error({"ret_code": 0x0000000000C00001})
    assert not L.is_error({"ret_code": (0x8000000000000000 | 3) - (1 << 64)})  # a warning
    replies = [{"ret_code": ERROR, "message": "Node 'x' is neither evicted nor evacuated.",
                "correction": "Only evicted or evacuated nodes can be restored."}]
    assert L.reply_errors(replies) == ["Node 'x' is neither evicted nor evacuated.; "
                                       "correction: Only evicted or evacuated nodes can be restored."]


def test_not_evacuating_warnings_are_found_among_the_replies():
    warn = (0x8000000000000000 | 1020) - (1 << 64)  # ApiConsts.WARN_NOT_EVACUATING, signed
    replies = [{"ret_code": 0x0000000000C00001, "message": "Node 'w' is being evacuated."},
               {"ret_code": warn, "message": "Resource 'pvc-a' cannot be evacuated as no available storage pool was found"},
               {"ret_code": (0x8000000000000000 | 3) - (1 << 64), "message": "another warning"},
               {"ret_code": ERROR, "message": "an error"},
               {"ret_code": warn, "message": "Snapshot 's1' of resource pvc-a' cannot be evacuated ..."},
               {"ret_code": warn | 0x0000000000C00000, "message": "Resource 'pvc-b' cannot be evacuated as it is not a"
                " DRBD resource"}]
    assert L.not_evacuating(replies) == ["Resource 'pvc-a' cannot be evacuated as no available storage pool was found",
                                         "Resource 'pvc-b' cannot be evacuated as it is not a DRBD resource"]
    assert L.not_evacuating([]) == [] and not L.is_error(replies[1])


def test_a_replica_in_use_says_so():
    row = dict(rsc(flags=["EVACUATE"]), state={"in_use": True})
    assert L.resource_state(row)["state"] == "UpToDate, Evacuating, InUse"


@pytest.mark.parametrize("resource,faulty,state", [
    (rsc(), False, "UpToDate"),
    (rsc(vols=[vol("Outdated")]), True, "Outdated"),
    (rsc(vols=[vol("Inconsistent")]), True, "Inconsistent"),
    (rsc(vols=[vol("DUnknown")]), True, "Unknown"),
    (rsc(vols=[vol("Diskless")]), True, "Diskless"),  # lost its disk
    (rsc(flags=["DISKLESS"], vols=[vol("Diskless")]), False, "Diskless"),
    (rsc(flags=["DISKLESS", "TIE_BREAKER"], vols=[vol("Diskless")]), False, "TieBreaker"),
    (rsc(vols=[vol(None, drbd=False)]), False, "Created"),  # no DRBD layer
    (rsc(flags=["DELETE"]), True, "DELETING"),
    (rsc(flags=["DRBD_DELETE"]), True, "DELETING"),
    (rsc(flags=["INACTIVE"]), True, "INACTIVE"),
    (rsc(vols=[]), True, "Unknown"),
    (rsc(vols=[vol(), vol("Failed")]), True, "Failed"),
])
def test_faulty_rule_of_the_official_client(resource, faulty, state):
    rows = L.faulty_rows([resource])
    assert bool(rows) is faulty
    assert L.resource_state(resource)["state"] == state


def test_a_failed_connection_is_faulty_and_named():
    r = rsc(conns={"w2": {"connected": False, "message": "StandAlone"}, "w3": {"connected": True}})
    assert L.faulty_rows([r]) == [{"resource": "pvc-a", "node": "w1", "state": "UpToDate",
                                  "connections": ["StandAlone(w2)"]}]


def test_unsettled_rows_name_connecting_sync_and_deleting():
    rows = L.unsettled_rows([
        rsc("a", conns={"w2": {"connected": False, "message": "Connecting"}}),
        rsc("b", vols=[vol("Inconsistent", repl={"w1": {"replication_state": "SyncTarget", "done_percentage": 42.0}})]),
        rsc("c", flags=["DELETE"]),
        rsc("d"),
        rsc("e", conns={"w2": {"connected": False, "message": "StandAlone"}}),  # faulty, but not moving
    ])
    assert rows == [{"resource": "a", "node": "w1", "states": ["Connecting to w2"]},
                    {"resource": "b", "node": "w1", "states": ["SyncTarget 42.0% with w1"]},
                    {"resource": "c", "node": "w1", "states": ["DELETING"]}]


def test_rows_on_counts_only_the_pool_on_the_node():
    res = [rsc("a", "w1"), rsc("b", "w1", vols=[vol(pool="other")]), rsc("c", "w2"),
           rsc("d", "w1", flags=["DELETE"])]
    assert [r["resource"] for r in L.rows_on(res, "w1", "lvm-thick")] == ["a", "d"]


def test_restore_only_for_evacuated_or_evicted_nodes():
    assert L.restore_needed({"flags": ["EVACUATE"]})
    assert L.restore_needed({"flags": ["EVICTED"]})
    assert not L.restore_needed({"flags": []})
    assert L.evacuate_needed({"flags": []})
    assert not L.evacuate_needed({"flags": ["EVACUATE"]})


def test_unknown_node_names_the_known_ones():
    nodes = [{"name": "cp-1"}, {"name": "worker-1"}]
    assert L.node_errors(nodes, "worker-1") is None
    assert L.node_errors(nodes, "worker-9") == "node: 'worker-9' is not a LINSTOR node; known nodes: cp-1, worker-1"


@pytest.mark.parametrize("value,seconds", [("45m", 2700), ("30m", 1800), ("1h30m", 5400), ("90s", 90),
                                           (120, 120), ("600", 600)])
def test_durations(value, seconds):
    assert L.duration_seconds(value) == seconds


@pytest.mark.parametrize("value", ["45 minutes", "", "0", "m", True, -5])
def test_bad_durations_name_the_field(value):
    with pytest.raises(ValueError, match="evacuation_timeout"):
        L.duration_seconds(value, "evacuation_timeout")


def svc(name, selector=None, ports=None):
    return {"metadata": {"name": name}, "spec": {"selector": selector or {},
                                                 "ports": ports or [{"name": "api", "port": 3370}]}}


def test_controller_url_from_the_piraeus_service_or_the_selector():
    sel = "app.kubernetes.io/component=linstor-controller"
    assert L.controller_url([svc("linstor-controller")], "piraeus-datastore", sel) == \
        ("http://linstor-controller.piraeus-datastore.svc:3370", None)
    other = svc("my-linstor", {"app.kubernetes.io/component": "linstor-controller"},
                [{"name": "https", "port": 3371}])
    assert L.controller_url([svc("x"), other], "ns", sel) == ("https://my-linstor.ns.svc:3371", None)
    url, error = L.controller_url([svc("x")], "ns", sel)
    assert url is None and "controller_url" in error and sel in error
