"""awx/configure.yml without an AWX server (there is none here; tests/unit/test_operate_awx.py
validates every object against awx.awx's argument specs): missing settings are named
before any request, and with complete settings the play computes the catalog's objects
and hands them to awx.awx, whose first request goes to the controller it was given."""

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
TOKEN = "awx-k8s-token-4b1d9e7c2a"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def configure(tmp_path, **env_vars):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".local" / "collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"))
    for key in [k for k in env if k.startswith(("AWX_", "CONTROLLER_", "K8S_AUTH_", "TOWER_"))]:
        del env[key]
    env.update(env_vars)
    return subprocess.run([ANSIBLE_PLAYBOOK, str(ROOT / "awx" / "configure.yml"), "-v"], env=env, cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=300, check=False)


def test_missing_settings_are_named_before_any_request(tmp_path):
    run = configure(tmp_path, CONTROLLER_HOST="http://127.0.0.1:%d" % free_port(), K8S_AUTH_HOST="https://10.0.0.10:6443")
    assert run.returncode != 0
    assert ("Missing AWX settings: AWX_PROJECT_SCM_URL (awx_project_scm_url), "
            "K8S_AUTH_API_KEY (awx_k8s_bearer_token)") in run.stdout, run.stdout[-3000:]
    assert "ok=0" in run.stdout and "TASK [Execution environment]" not in run.stdout


def test_the_objects_reach_awx_awx_which_calls_the_controller_given(tmp_path):
    port = free_port()  # nothing listens there: the first request is refused
    run = configure(tmp_path, CONTROLLER_HOST="http://127.0.0.1:%d" % port, CONTROLLER_OAUTH_TOKEN="controller-token-1",
                    AWX_PROJECT_SCM_URL="https://git.example.lan/homelab/k8s_ha.git", K8S_AUTH_HOST="https://10.0.0.10:6443",
                    K8S_AUTH_API_KEY=TOKEN, AWX_EE_IMAGE="registry.example.lan/homelab/k8s-ha-ee:0.1.0",
                    AWX_EVIDENCE_ROOT="/srv/awx/evidence")
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert "TASK [The objects the catalog asks for]" in out and "ok=2" in out, out[-3000:]
    assert "127.0.0.1:%d/api/v2/" % port in out and "Connection refused" in out, out[-3000:]
    assert '"image": "registry.example.lan/homelab/k8s-ha-ee:0.1.0"' in out
    assert TOKEN not in out


def test_a_relative_evidence_root_is_refused_before_any_request(tmp_path):
    run = configure(tmp_path, CONTROLLER_HOST="http://127.0.0.1:%d" % free_port(),
                    AWX_PROJECT_SCM_URL="https://git.example.lan/homelab/k8s_ha.git", K8S_AUTH_HOST="https://10.0.0.10:6443",
                    K8S_AUTH_API_KEY=TOKEN, AWX_EVIDENCE_ROOT="evidence")
    assert run.returncode != 0
    assert "awx_objects: settings evidence_root: 'evidence' is not an absolute path" in run.stdout, run.stdout[-3000:]
    assert "TASK [Execution environment]" not in run.stdout
