"""awx/configure.yml without an AWX server (there is none here; tests/unit/test_operate_awx.py
validates every object against awx.awx's argument specs). A stand-in controller on
127.0.0.1 records each request: it knows the organization Default, finds no other object
and refuses every create. Missing or bad settings are named before any request; with
complete settings the play computes the catalog's objects and awx.awx sends the first one
to the controller it was given, with the controller's token and never the cluster's."""

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
TOKEN = "awx-k8s-token-4b1d9e7c2a"


REFUSED = "stand-in controller: creates are refused"


class Recorder(BaseHTTPRequestHandler):
    def _reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.server.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                     "body": self.rfile.read(length).decode("utf-8", "replace")})

    def do_GET(self):  # pylint: disable=invalid-name
        self._record()
        found = []
        if self.path == "/api/v2/organizations/?name=Default":
            found = [{"id": 1, "name": "Default", "url": "/api/v2/organizations/1/"}]
        self._reply(200, {"count": len(found), "next": None, "previous": None, "results": found})

    def do_POST(self):  # pylint: disable=invalid-name
        self._record()
        self._reply(400, {"__all__": [REFUSED]})

    do_PATCH = do_PUT = do_DELETE = do_POST

    def log_message(self, *args):
        pass


@pytest.fixture
def controller():
    """A stand-in AWX controller: its URL, and the list of the requests it got."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = "http://127.0.0.1:%d" % server.server_address[1]
    yield server
    server.shutdown()
    server.server_close()


def configure(tmp_path, **env_vars):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".local" / "collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"))
    for key in [k for k in env if k.startswith(("AWX_", "CONTROLLER_", "K8S_AUTH_", "TOWER_"))]:
        del env[key]
    env.update(env_vars)
    return subprocess.run([ANSIBLE_PLAYBOOK, str(ROOT / "awx" / "configure.yml"), "-v"], env=env, cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=300, check=False)


def test_missing_settings_are_named_before_any_request(tmp_path, controller):
    run = configure(tmp_path, CONTROLLER_HOST=controller.url, K8S_AUTH_HOST="https://10.0.0.10:6443")
    assert run.returncode != 0
    assert ("Missing AWX settings: AWX_PROJECT_SCM_URL (awx_project_scm_url), "
            "K8S_AUTH_API_KEY (awx_k8s_bearer_token)") in run.stdout, run.stdout[-3000:]
    assert "ok=0" in run.stdout and "TASK [Execution environment]" not in run.stdout
    assert controller.requests == []


def test_the_objects_reach_awx_awx_which_calls_the_controller_given(tmp_path, controller):
    run = configure(tmp_path, CONTROLLER_HOST=controller.url, CONTROLLER_OAUTH_TOKEN="controller-token-1",
                    AWX_PROJECT_SCM_URL="https://git.example.lan/homelab/k8s_ha.git", K8S_AUTH_HOST="https://10.0.0.10:6443",
                    K8S_AUTH_API_KEY=TOKEN, AWX_EE_IMAGE="registry.example.lan/homelab/k8s-ha-ee:0.1.0",
                    AWX_EVIDENCE_ROOT="/srv/awx/evidence")
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert "TASK [The objects the catalog asks for]" in out and "ok=2" in out, out[-3000:]
    # The first module (execution_environment) looks its object up, finds none, resolves the
    # organization, asks to create it, is refused and stops the play.
    assert [(r["method"], r["path"]) for r in controller.requests] == [
        ("GET", "/api/v2/execution_environments/?name=k8s_ha"),
        ("GET", "/api/v2/organizations/?name=Default"),
        ("POST", "/api/v2/execution_environments/")], controller.requests
    assert {r["headers"].get("Authorization") for r in controller.requests} == {"Bearer controller-token-1"}
    assert json.loads(controller.requests[-1]["body"]) == {
        "name": "k8s_ha", "image": "registry.example.lan/homelab/k8s-ha-ee:0.1.0", "pull": "missing", "organization": 1,
        "description": "homelab.k8s_ha's execution environment (execution-environment.yml)"}
    assert "Unable to create execution_environment k8s_ha: %s" % REFUSED in out, out[-3000:]
    assert TOKEN not in out and not [r for r in controller.requests if TOKEN in json.dumps(r)]


def test_a_relative_evidence_root_is_refused_before_any_request(tmp_path, controller):
    run = configure(tmp_path, CONTROLLER_HOST=controller.url,
                    AWX_PROJECT_SCM_URL="https://git.example.lan/homelab/k8s_ha.git", K8S_AUTH_HOST="https://10.0.0.10:6443",
                    K8S_AUTH_API_KEY=TOKEN, AWX_EVIDENCE_ROOT="evidence")
    assert run.returncode != 0
    assert "awx_objects: settings evidence_root: 'evidence' is not an absolute path" in run.stdout, run.stdout[-3000:]
    assert "TASK [Execution environment]" not in run.stdout
    assert controller.requests == []
