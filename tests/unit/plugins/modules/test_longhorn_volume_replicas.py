"""longhorn_volume_replicas' argument handling, without a cluster."""

import pytest

from ansible_collections.homelab.k8s_ha.plugins.modules import longhorn_volume_replicas


@pytest.mark.parametrize("args, msg", [
    # {"pvc-arr": true} was read as one replica
    ({"replicas_by_volume": {"pvc-arr": True}}, "replicas_by_volume.pvc-arr: true is not an integer; allowed: 1 to 20"),
    ({"replicas_by_volume": {"pvc-arr": 2, "pvc-qdrant": 0}},
     "replicas_by_volume.pvc-qdrant: 0 is out of range; allowed: 1 to 20"),
    ({"replicas": True}, "replicas: true is not an integer; allowed: 1 to 20"),
])
def test_a_count_that_is_not_an_integer_from_1_to_20_fails_before_any_request(run_refused, args, msg):
    code, out = run_refused(longhorn_volume_replicas, args)
    assert code == 1 and out["failed"]
    assert out["msg"] == msg
