"""A hung API server (it accepts connections and never answers) fails a module within its
request_timeout, with a message naming the request, the server and the option; before, a
module waited for ever."""

import json
import socket
import threading
import time

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.homelab.k8s_ha.plugins.modules import lane_node, placement_audit_info


@pytest.fixture
def hung_server():
    """A TCP server on loopback that accepts every connection and never sends a byte."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held, stop = [], threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def kubeconfig_for(tmp_path, port):
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:%d" % port,
                                               "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    return str(path)


@pytest.mark.parametrize("module, args", [
    (placement_audit_info, {}),
    (lane_node, {"name": "worker-1", "cordon": True}),
], ids=["placement_audit_info", "lane_node"])
def test_a_hung_api_server_fails_the_module_within_its_request_timeout(hung_server, tmp_path, capsys, module, args):
    kubeconfig = kubeconfig_for(tmp_path, hung_server)
    started = time.monotonic()
    with patch_module_args(dict(args, kubeconfig=kubeconfig, request_timeout=1)), pytest.raises(SystemExit) as exit_info:
        module.main()
    took = time.monotonic() - started
    out = json.loads(capsys.readouterr().out)
    assert exit_info.value.code == 1 and out["failed"]
    assert "the API server at https://127.0.0.1:%d did not answer within 1 s (request_timeout)" % hung_server in out["msg"], out
    # one connection tried twice at most (kube.with_deadline), not for ever
    assert took < 10, took
    assert "Traceback" not in json.dumps(out)


def test_a_request_that_sets_its_own_timeout_keeps_it():
    """A watch asks for its own read timeout (kube.wait_for_change): the deadline leaves it."""
    from ansible_collections.homelab.k8s_ha.plugins.module_utils.kube import with_deadline

    seen = []

    class Rest(object):
        def __init__(self):
            self.pool_manager = type("Pool", (), {"connection_pool_kw": {}})()

        def request(self, method, url, *args, **kwargs):
            seen.append(kwargs.get("_request_timeout"))

    retry = object()
    original = with_deadline(Rest, 7, retry)
    rest = Rest()
    rest.request("GET", "/api/v1/nodes")
    rest.request("GET", "/api/v1/nodes", _request_timeout=65)
    assert seen == [(7, 7), 65]
    assert rest.pool_manager.connection_pool_kw["retries"] is retry
    # installed again (a second client in one process), it wraps the original, not itself
    with_deadline(Rest, 3)
    assert Rest.request.homelab_original is original
    rest.request("GET", "/api/v1/nodes")
    assert seen[-1] == (3, 3)
