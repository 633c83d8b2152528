"""app_gates_info's argument handling, without a cluster: the lane taint is a taint."""

import pytest

from ansible_collections.homelab.k8s_ha.plugins.modules import app_gates_info

APP = {"namespace": "apps", "name": "arr", "secondary_node": "worker-1"}


@pytest.mark.parametrize("taint, said", [
    # accepted before, and the gate then looked for a taint {"foo": "bar"} that no node carries
    ({"foo": "bar"}, ["missing required arguments: effect, key found in lane_taint"]),
    ({"key": "workload-lane", "effect": "NoSchedule", "foo": "bar"},
     ["Unsupported parameters for (", "lane_taint.foo", "Supported parameters include: effect, key, value"]),
    ({"key": "workload-lane", "value": "secondary"}, ["missing required arguments: effect found in lane_taint"]),
    ({"key": "workload-lane", "value": "secondary", "effect": "NoScheduling"},
     ["value of effect must be one of: NoSchedule, PreferNoSchedule, NoExecute, got: NoScheduling found in lane_taint"]),
    ("workload-lane=secondary:NoSchedule", ["lane_taint"]),
])
def test_a_lane_taint_that_is_not_a_taint_fails_before_any_request(run_refused, taint, said):
    code, out = run_refused(app_gates_info, dict(APP, lane_taint=taint))
    assert code == 1 and out["failed"]
    for text in said:
        assert text in out["msg"], out["msg"]
    assert "\n" not in out["msg"]


def test_a_lane_taint_as_the_app_migration_role_passes_it_is_accepted(run_refused, monkeypatch):
    """roles/app_migration (preflight) passes app_migration_lane.taint: key, value, effect."""
    got = {}

    def run(module):
        got.update(module.params["lane_taint"])
        module.exit_json(changed=False)

    monkeypatch.setattr(app_gates_info, "run_app_gates_info", run)
    taint = {"key": "workload-lane", "value": "secondary", "effect": "NoSchedule"}
    code, out = run_refused(app_gates_info, dict(APP, lane_taint=taint))
    assert code == 0 and not out.get("failed"), out
    assert got == taint
    # the value may be left out: a taint without one
    got.clear()
    code, out = run_refused(app_gates_info, dict(APP, lane_taint={"key": "dedicated", "effect": "NoExecute"}))
    assert code == 0 and got == {"key": "dedicated", "value": None, "effect": "NoExecute"}
