"""The Longhorn simulator's rules that are pure functions, against longhorn-manager v1.10.0's
own: when a degraded volume gets a replacement replica (scheduler.RequireNewReplica,
timeToReplacementReplica, IsPotentiallyReusableReplica)."""

import datetime
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "cluster"))
sys.path.insert(0, str(ROOT / "tests" / "simulators"))

from longhorn_simulator import potentially_reusable, replacement_delay  # noqa: E402  pylint: disable=wrong-import-position

NOW = datetime.datetime(2026, 12, 5, 6, 0, 0, tzinfo=datetime.timezone.utc).timestamp()


def stamp(seconds_ago):
    return datetime.datetime.fromtimestamp(NOW - seconds_ago, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def replica(failed_ago=None, node="worker-1", retries=0, eviction=False):
    return {"spec": {"nodeID": node, "failedAt": stamp(failed_ago) if failed_ago is not None else "",
                     "rebuildRetryCount": retries, "evictionRequested": eviction}}


HEALTHY = replica()


@pytest.mark.parametrize("robustness, degraded_ago, replicas, delay", [
    # a degraded volume with a failed replica that may come back waits the interval from
    # when the volume became degraded
    ("degraded", 10, [HEALTHY, replica(failed_ago=10)], 290),
    # degraded for longer than the interval: a replica that fails now is replaced at once
    # (counting from the failure, as the simulator did before, would wait 300 s)
    ("degraded", 400, [HEALTHY, replica(failed_ago=1)], 0),
    # nothing that could come back: at once
    ("degraded", 10, [HEALTHY], 0),
    ("degraded", 10, [HEALTHY, replica(failed_ago=10, retries=5)], 0),
    ("degraded", 10, [HEALTHY, replica(failed_ago=10, eviction=True)], 0),
    ("degraded", 10, [HEALTHY, replica(failed_ago=10, node="")], 0),
    # not degraded (a new volume, a healthy one losing a replica to eviction): at once
    ("healthy", 10, [HEALTHY, replica(failed_ago=10)], 0),
    ("faulted", 10, [replica(failed_ago=10)], 0),
    ("", 10, [], 0),
])
def test_a_replacement_waits_from_when_the_volume_became_degraded(robustness, degraded_ago, replicas, delay):
    assert replacement_delay(robustness, stamp(degraded_ago), replicas, 300, NOW) == delay


def test_a_last_degraded_time_that_does_not_parse_replenishes_at_once():
    assert replacement_delay("degraded", "", [HEALTHY, replica(failed_ago=1)], 300, NOW) == 0
    assert replacement_delay("degraded", "yesterday", [HEALTHY, replica(failed_ago=1)], 300, NOW) == 0


def test_a_replica_deleted_in_the_same_pass_is_not_reusable():
    deleted = {"spec": {"nodeID": "worker-1", "failedAt": "deleted"}}
    assert not potentially_reusable(deleted) and potentially_reusable(replica(failed_ago=1))
