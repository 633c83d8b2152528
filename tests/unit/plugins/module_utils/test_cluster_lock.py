"""cluster_lock.Lock against an in-memory Lease store with the API server's rules
(create fails on an existing object, replace and delete on a stale resourceVersion)."""

import copy
import datetime

import pytest

from ansible_collections.homelab.k8s_ha.plugins.module_utils.cluster_lock import Lock, LockLost
from ansible_collections.homelab.k8s_ha.plugins.module_utils.kube import ConflictError


class Failed(Exception):
    pass


class Clock(object):
    def __init__(self):
        self.t = datetime.datetime(2026, 11, 22, 8, 0, 0, tzinfo=datetime.timezone.utc)

    def __call__(self):
        return self.t

    def sleep(self, seconds):
        self.t += datetime.timedelta(seconds=seconds)


class Store(object):
    """One Lease, as the API server keeps it."""

    def __init__(self, check_mode=False):
        self.obj, self.rv, self.check_mode, self.writes = None, 0, check_mode, []

    def get(self, kind, api_version, name, namespace=None):
        return copy.deepcopy(self.obj)

    def write(self, verb, kind, api_version, body=None, name=None, namespace=None, resource_version=None):
        self.writes.append(verb)
        if verb == "create":
            if self.obj is not None:
                raise ConflictError("exists")
        elif verb == "replace":
            if self.obj is None or body["metadata"].get("resourceVersion") != self.obj["metadata"]["resourceVersion"]:
                raise ConflictError("changed")
        elif verb == "delete":
            if resource_version != self.obj["metadata"]["resourceVersion"]:
                raise ConflictError("changed")
            self.obj = None
            return {}
        self.rv += 1
        self.obj = copy.deepcopy(body)
        self.obj["metadata"]["resourceVersion"] = str(self.rv)
        return self.obj

    def fail_json(self, **kw):
        raise Failed(kw["msg"])


def lock(store, holder, clock, duration=60):
    return Lock(store, "capi-rollout-default-homelab", "default", holder, duration, now=clock, sleep=clock.sleep)


def test_one_holder_then_takeover_after_expiry():
    store, clock = Store(), Clock()
    a, b = lock(store, "run-a", clock), lock(store, "run-b", clock)
    assert a.acquire()[0] == "create"
    with pytest.raises(Failed, match="held by run-a"):
        b.acquire()
    with pytest.raises(Failed, match=r"held by run-a .*waited 30 s"):
        b.acquire(wait_timeout=30, poll=5)
    clock.sleep(31)  # 61 s after run-a's last renewal: expired
    action, detail = b.acquire()
    assert action == "takeover" and detail["previous"] == "run-a"
    assert store.obj["spec"]["holderIdentity"] == "run-b" and store.obj["spec"]["leaseTransitions"] == 1


def test_a_waiting_run_gets_the_lock_when_the_holder_releases_it():
    store, clock = Store(), Clock()
    a, b = lock(store, "run-a", clock), lock(store, "run-b", clock)
    a.acquire()
    events = []
    real_sleep = clock.sleep

    def sleep_then_release(seconds):
        real_sleep(seconds)
        if store.obj and store.obj["spec"]["holderIdentity"] == "run-a":
            assert a.release() == (True, "run-a")

    b.sleep = sleep_then_release
    assert b.acquire(wait_timeout=30, poll=2, events=events)[0] == "create"
    assert events[0]["holder"] == "run-a"


def test_keep_renews_when_due_and_stops_when_lost():
    store, clock = Store(), Clock()
    a = lock(store, "run-a", clock, duration=60)
    a.acquire()
    renewed = store.obj["spec"]["renewTime"]
    clock.sleep(10)
    a.keep()
    assert store.obj["spec"]["renewTime"] == renewed  # not due before 20 s
    clock.sleep(11)
    a.keep()
    assert store.obj["spec"]["renewTime"] != renewed and store.writes == ["create", "replace"]
    clock.sleep(100)  # run-a stalled: run-b takes the expired lock over
    lock(store, "run-b", clock).acquire()
    with pytest.raises(LockLost, match="held by run-b now"):
        a.keep()
    assert a.release() == (False, "run-b") and store.obj["spec"]["holderIdentity"] == "run-b"


def test_check_mode_writes_nothing():
    store, clock = Store(check_mode=True), Clock()
    a = lock(store, "run-a", clock)
    assert a.acquire()[0] == "create"
    a.keep()
    assert store.writes == [] and store.obj is None


def test_bad_options_fail_before_any_read():
    store, clock = Store(), Clock()
    with pytest.raises(Failed, match="duration_seconds: 5 is too short"):
        lock(store, "run-a", clock, duration=5)
    with pytest.raises(Failed, match="holder: must not be empty"):
        lock(store, "", clock)
