import datetime

import pytest

from ansible_collections.homelab.k8s_ha.plugins.module_utils import lease as L

NOW = datetime.datetime(2026, 11, 22, 8, 0, 0, tzinfo=datetime.timezone.utc)


def lease(holder, renewed_ago, duration=60, transitions=0):
    return {"metadata": {"name": "capi-rollout-default-homelab", "resourceVersion": "7"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration,
                     "acquireTime": L.micro_time(NOW - datetime.timedelta(seconds=renewed_ago + 5)),
                     "renewTime": L.micro_time(NOW - datetime.timedelta(seconds=renewed_ago)),
                     "leaseTransitions": transitions}}


def test_lock_name_is_the_runbooks_mutex_key():
    assert L.lock_name("default", "homelab") == "capi-rollout-default-homelab"
    with pytest.raises(ValueError, match="cluster: 'Home_Lab'"):
        L.lock_name("default", "Home_Lab")
    with pytest.raises(ValueError, match="namespace"):
        L.lock_name("", "homelab")


def test_decide_create_renew_takeover_wait():
    assert L.decide(None, "run-a", NOW) == ("create", {})
    assert L.decide(lease("run-a", 10), "run-a", NOW) == ("renew", {})
    action, detail = L.decide(lease("run-a", 10), "run-b", NOW)
    assert action == "wait" and detail["holder"] == "run-a" and detail["seconds_left"] == 50.0
    action, detail = L.decide(lease("run-a", 61), "run-b", NOW)
    assert action == "takeover" and detail["previous"] == "run-a" and "expired" in detail["why"]
    assert L.decide(lease("", 1), "run-b", NOW)[0] == "takeover"


def test_held_spec_counts_transitions_and_keeps_acquire_time_on_renew():
    old = lease("run-a", 61, transitions=2)
    taken = L.held_spec(old, "run-b", 300, NOW, "takeover")
    assert taken["holderIdentity"] == "run-b" and taken["leaseTransitions"] == 3
    assert taken["acquireTime"] == taken["renewTime"] == "2026-11-22T08:00:00.000000Z"
    renewed = L.held_spec(lease("run-b", 10), "run-b", 300, NOW, "renew")
    assert renewed["acquireTime"] != renewed["renewTime"]
    assert L.held_spec(None, "run-a", 300, NOW, "create")["leaseTransitions"] == 0


def test_renewal_is_due_after_a_third_of_the_duration():
    assert L.due(None, NOW, 300)
    assert not L.due(NOW - datetime.timedelta(seconds=99), NOW, 300)
    assert L.due(NOW - datetime.timedelta(seconds=100), NOW, 300)


def test_wait_message_names_the_holder_and_what_to_do():
    detail = L.decide(lease("awx-job-41", 10), "awx-job-42", NOW)[1]
    msg = L.wait_message("capi-rollout-default-homelab", "default", detail)
    assert "held by awx-job-41" in msg and "50 s left" in msg and "take it over" in msg
