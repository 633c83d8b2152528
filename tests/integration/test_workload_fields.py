"""workload_fields with ``targets`` on the real API server: one call plans several objects
(a result and a diff per object, nothing written), and a bad target anywhere in the list
stops the call before the first write."""

from observe import audit_size, writes

PLAYBOOK = "tests/integration/playbooks/modules.yml"
QDRANT = {"namespace": "apps", "name": "qdrant", "fields": {"spec.replicas": 2}}
HOMARR = {"namespace": "apps", "name": "homarr", "fields": {"spec.revisionHistoryLimit": 3}}


def replicas(cluster, name):
    return cluster.get_json("deployment", name, "-n", "apps")["spec"]["replicas"]


def test_targets_are_planned_in_one_call_with_nothing_written(two_node, run_playbook):
    c = two_node
    offset = audit_size(c)
    run = run_playbook(c, PLAYBOOK, extra_vars={"fields_args": {"targets": [QDRANT, HOMARR]}}, check=True)
    assert run.rc == 0, run.stdout + run.stderr
    r = run.result
    assert r["changed"] is True
    # each result names what it was done to, the module's kind and api_version filled in
    assert [x["item"] for x in r["results"]] == [dict(t, kind="Deployment", api_version="apps/v1")
                                                 for t in (QDRANT, HOMARR)]
    assert r["results"][0]["before"] == {"spec.replicas": 1}
    assert r["results"][0]["rollback"] == {"spec.replicas": 1}
    # the diff a person reads: one per changed object, headed by its place in the list
    assert [d["before_header"] for d in r["diff"]] == ["targets[0] (apps/qdrant)", "targets[1] (apps/homarr)"]
    assert "--- before: targets[0] (apps/qdrant)" in run.stdout
    assert writes(c, offset, "deployments") == []
    assert replicas(c, "qdrant") == 1


def test_a_bad_target_anywhere_stops_the_call_before_any_write(two_node, run_playbook):
    c = two_node
    offset = audit_size(c)
    missing = {"namespace": "apps", "name": "sonarr", "fields": {"spec.replicas": 2}}
    run = run_playbook(c, PLAYBOOK, extra_vars={"fields_args": {"targets": [QDRANT, missing]}, "may_fail": True})
    r = run.result
    assert r["failed"] is True
    assert r["msg"].startswith("targets[1] (apps/sonarr): name: no Deployment sonarr in namespace apps; there are: ")
    assert "qdrant" in r["msg"]
    assert writes(c, offset, "deployments") == []
    assert replicas(c, "qdrant") == 1
