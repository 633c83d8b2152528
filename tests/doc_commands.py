"""The commands the documentation tells a person to run, as the tests run them.

A fenced ```bash block in README.md or docs/*.md (and the other READMEs) is marked by an
HTML comment on the line before its fence:

    <!-- doc-test: two-node -->            run, in order, on the scenario "two-node"
    <!-- doc-test: not run: <reason> -->   never run, for the reason given

Every block that runs ansible-playbook, make or kubectl must carry a mark
(tests/unit/test_doc_commands.py). A run block is run command by command, verbatim, in
the repository's folder and with the environment a person has after `source
.venv/bin/activate`. A placeholder is filled the way a person would copy it: ``<plan
id>`` from the last "Plan id: ..." the commands before printed, ``<drill id>`` from
"Drill id: ...", ``evidence/<time>-NAME`` with the newest such evidence folder. The
bash blocks of an evidence report.md are run the same way (``report_commands``).
"""

import os
import re
import shlex
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ["README.md", "awx/README.md", "semaphore/README.md", "rbac/README.md"] + \
    sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))
MARK = re.compile(r"^<!--\s*doc-test:\s*(?P<what>.*?)\s*-->\s*$")
RUNS = re.compile(r"(^|[\s;&|(])(ansible-playbook|make|kubectl)\s")


class Block(object):
    def __init__(self, path, line, text, mark):
        self.path, self.line, self.text, self.mark = path, line, text, mark

    @property
    def scenario(self):
        if self.mark is None or self.mark.startswith("not run"):
            return None
        return self.mark

    @property
    def not_run_reason(self):
        if self.mark and self.mark.startswith("not run"):
            return self.mark[len("not run"):].lstrip(" :") or None
        return None

    @property
    def runs_the_collection(self):
        return any(RUNS.search(c) for c in commands(self.text))

    def __repr__(self):
        return "%s:%d" % (self.path, self.line)


def blocks(path):
    """The ```bash blocks of one Markdown file, with the mark before each."""
    lines = (ROOT / path).read_text().splitlines()
    out, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "```bash":
            j = i + 1
            while j < len(lines) and lines[j].strip() != "```":
                j += 1
            prev = lines[i - 1] if i > 0 else ""
            m = MARK.match(prev.strip())
            out.append(Block(path, i + 1, "\n".join(lines[i + 1:j]), m.group("what") if m else None))
            i = j
        i += 1
    return out


def all_blocks():
    return [b for path in DOCS if (ROOT / path).exists() for b in blocks(path)]


def _open_quote(text):
    """Whether ``text`` ends inside a quoted string (the command goes on, as in bash)."""
    try:
        shlex.split(text, comments=True)
    except ValueError:
        return True
    return False


def commands(text):
    """The commands of a block: continuation lines and quoted strings that span lines
    joined, comment-only lines dropped."""
    out, current = [], ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if not current and (not line.strip() or line.strip().startswith("#")):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        if _open_quote(current + line):
            current += line + "\n"
            continue
        out.append((current + line).strip())
        current = ""
    if current:
        out.append(current.strip())
    return out


def warning_lines(text):
    """The lines of ansible-playbook's output that are warnings or deprecation warnings."""
    return [line for line in text.splitlines() if "[WARNING]" in line or "[DEPRECATION WARNING]" in line]


def person_env(extra=None):
    """What a person's shell has after `source .venv/bin/activate`: none of the test
    run's ANSIBLE_*, K8S_AUTH_* or KUBECONFIG settings (make exports some of them)."""
    env = dict((k, v) for k, v in os.environ.items()
               if not k.startswith(("ANSIBLE_", "K8S_AUTH_", "MOLECULE_")) and k not in ("KUBECONFIG", "RESULT_DIR"))
    venv = ROOT / ".venv"
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = "%s:%s" % (venv / "bin", env.get("PATH", ""))
    env["ANSIBLE_NOCOLOR"] = "1"  # output read by a test, not a terminal
    env.update(extra or {})
    return env


class Session(object):
    """Runs documented commands one after another, as one person at one shell would:
    an `export` stays for the commands after it, placeholders are filled from what the
    commands before printed."""

    def __init__(self, env=None, cwd=ROOT):
        self.env = person_env(env)
        self.cwd = Path(cwd)
        self.outputs = []
        self.ran = []
        # placeholders a scenario fills: {"<your gitops checkout>": "/tmp/..."}
        self.values = {}

    def fill(self, command):
        for placeholder, value in self.values.items():
            command = command.replace(placeholder, value)

        def last(pattern, what):
            for out in reversed(self.outputs):
                found = re.findall(pattern, out)
                if found:
                    return found[-1]
            raise AssertionError("%s: no earlier command printed %s" % (command, what))

        if "<plan id>" in command:
            command = command.replace("<plan id>", last(r"[Pp]lan id: ([0-9a-f]{16})", "a plan id"))
        if "<drill id>" in command:
            command = command.replace("<drill id>", last(r"Drill id: ([0-9a-f]{16})", "a drill id"))

        def folder(m):
            found = sorted((self.cwd / m.group(1)).glob("*-" + m.group(2)))
            assert found, "%s: no evidence folder %s/<time>-%s" % (command, m.group(1), m.group(2))
            return str(found[-1].relative_to(self.cwd)) if not m.group(1).startswith("/") else str(found[-1])
        command = re.sub(r"([^\s=]*evidence)/<time>-([A-Za-z0-9_]+)", folder, command)
        left = re.findall(r"<[a-z][a-z0-9 _-]*>", command)
        assert not left, "%s: placeholder %s is not one a test can fill" % (command, left)
        return command

    def run(self, command, timeout=1800):
        if command.startswith("export "):
            # the shell keeps what it exports for the commands after it
            filled = self.fill(command)
            proc = subprocess.run(["bash", "-c", filled + "\nenv -0"], env=self.env, cwd=self.cwd,
                                  capture_output=True, text=True, check=False)
            assert proc.returncode == 0, "documented command failed: %s\n%s" % (filled, proc.stderr)
            self.env = dict(kv.split("=", 1) for kv in proc.stdout.split("\0") if "=" in kv)
            self.ran.append(filled)
            return ""
        filled = self.fill(command)
        proc = subprocess.run(["bash", "-c", filled], env=self.env, cwd=self.cwd, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=timeout, check=False)
        out = proc.stdout + proc.stderr
        self.outputs.append(out)
        self.ran.append(filled)
        assert proc.returncode == 0, "documented command failed (rc %d): %s\n%s" % (
            proc.returncode, filled, out[-4000:])
        # what a person reads has real line breaks and no warning the collection causes
        assert "\\n" not in out, "a literal \\n in the output of %s:\n%s" % (filled, out[-4000:])
        warnings = warning_lines(out)
        assert not warnings, "%s warned:\n%s" % (filled, "\n".join(warnings))
        return out

    def run_block(self, block):
        return [self.run(c) for c in commands(block.text)]


def report_commands(report_md):
    """The bash blocks of an evidence report.md, as commands."""
    text = Path(report_md).read_text()
    return [c for body in re.findall(r"```bash\n(.*?)\n```", text, re.S) for c in commands(body)]
