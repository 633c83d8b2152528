"""Where each integration test spends its time (issue 19's measurement).

Wall time of the test's main thread is split into exclusive parts: a part nested in
another (a kubectl inside a wait) counts for the inner one only.

- ``ansible-playbook``: playbook runs (their start-up and module round trips included)
- ``doc command``: a documented command run through bash (mostly ansible-playbook too)
- ``kubectl`` and ``process``: other child processes the test waits for
- ``cluster``: starting the control plane and loading fixtures
- ``wait``: LocalCluster.wait, polling the cluster until a condition holds
- ``sleep``: time.sleep called by the test's own code
- ``python``: the rest (the test's reads, snapshots and comparisons)

conftest.py installs the wrappers for the session and prints the table of the slowest
tests at the end; .local/test-times.md keeps it."""

import contextlib
import subprocess
import threading
import time
from collections import defaultdict

PARTS = ("ansible-playbook", "doc command", "kubectl", "process", "cluster", "wait", "sleep")

_current = [None, 0.0]      # nodeid of the test running now, and when it started
_stack = []                 # [category, start, nested time] of the main thread
SPENT = defaultdict(lambda: defaultdict(float))
COUNT = defaultdict(lambda: defaultdict(int))
TOTAL = {}
_MAIN = threading.main_thread()


@contextlib.contextmanager
def spend(category):
    """Count the time of the block for ``category`` of the running test (main thread only)."""
    if threading.current_thread() is not _MAIN or _current[0] is None or (_stack and _stack[-1][0] == category):
        yield  # another thread's, between tests, or inside a call of the same kind (run's communicate)
        return
    frame = [category, time.monotonic(), 0.0]
    _stack.append(frame)
    try:
        yield
    finally:
        _stack.pop()
        took = time.monotonic() - frame[1]
        own = took - frame[2]
        SPENT[_current[0]][category] += own
        COUNT[_current[0]][category] += 1
        if _stack:
            _stack[-1][2] += took


def _kind(argv):
    if isinstance(argv, (str, bytes)):
        argv = [argv]
    first = str(argv[0]) if argv else ""
    name = first.rsplit("/", 1)[-1]
    if name == "ansible-playbook":
        return "ansible-playbook"
    if name == "bash":
        return "doc command"
    if name == "kubectl":
        return "kubectl"
    return "process"


def install(monkeypatch_target_cluster):
    """Wrap subprocess.run, Popen.wait/communicate, time.sleep and the cluster's up,
    load_fixture and wait for the session."""
    real_run = subprocess.run

    def run(*args, **kwargs):
        argv = args[0] if args else kwargs.get("args", [])
        with spend(_kind(argv)):
            return real_run(*args, **kwargs)  # pylint: disable=subprocess-run-check

    subprocess.run = run

    real_sleep = time.sleep

    def sleep(seconds):
        with spend("sleep"):
            real_sleep(seconds)

    time.sleep = sleep

    real_communicate = subprocess.Popen.communicate
    real_wait = subprocess.Popen.wait

    def communicate(self, *args, **kwargs):
        with spend(_kind(self.args)):
            return real_communicate(self, *args, **kwargs)

    def wait(self, *args, **kwargs):
        with spend(_kind(self.args)):
            return real_wait(self, *args, **kwargs)

    subprocess.Popen.communicate = communicate
    subprocess.Popen.wait = wait

    cls = monkeypatch_target_cluster
    for method, category in (("up", "cluster"), ("load_fixture", "cluster"), ("wait", "wait")):
        real = getattr(cls, method)

        def wrapped(self, *args, _real=real, _category=category, **kwargs):
            with spend(_category):
                return _real(self, *args, **kwargs)

        setattr(cls, method, wrapped)


def start(nodeid):
    _current[:] = [nodeid, time.monotonic()]


def stop():
    nodeid, t0 = _current
    TOTAL[nodeid] = TOTAL.get(nodeid, 0.0) + time.monotonic() - t0
    _current[0] = None


def table(n=15):
    """Markdown: the ``n`` slowest tests and where their time went."""
    rows = sorted(TOTAL.items(), key=lambda kv: -kv[1])[:n]
    head = "| seconds | test | " + " | ".join(PARTS) + " | python |"
    lines = [head, "|" + "---|" * (len(PARTS) + 3)]
    for nodeid, total in rows:
        parts = SPENT[nodeid]
        rest = total - sum(parts.values())
        cells = []
        for p in PARTS:
            s = parts.get(p, 0.0)
            cells.append("%.0f (%d)" % (s, COUNT[nodeid][p]) if COUNT[nodeid][p] and p in
                         ("ansible-playbook", "doc command") else ("%.0f" % s if s >= 0.5 else ""))
        lines.append("| %.1f | `%s` | %s | %.0f |" % (total, nodeid.split("/")[-1], " | ".join(cells), max(rest, 0)))
    summed = defaultdict(float)
    for parts in SPENT.values():
        for p, s in parts.items():
            summed[p] += s
    all_total = sum(TOTAL.values())
    lines.append("| %.0f | all %d tests | %s | %.0f |" % (
        all_total, len(TOTAL), " | ".join("%.0f" % summed.get(p, 0.0) for p in PARTS),
        max(all_total - sum(summed.values()), 0)))
    return "\n".join(lines)


def export():
    """This session's numbers as plain data (what an xdist worker hands to the controller)."""
    return {"spent": {k: dict(v) for k, v in SPENT.items()}, "count": {k: dict(v) for k, v in COUNT.items()},
            "total": dict(TOTAL)}


def merge(data):
    """Add a worker's export() to this session's numbers."""
    if not data:
        return
    for nodeid, parts in data["spent"].items():
        for p, s in parts.items():
            SPENT[nodeid][p] += s
    for nodeid, parts in data["count"].items():
        for p, n in parts.items():
            COUNT[nodeid][p] += n
    for nodeid, s in data["total"].items():
        TOTAL[nodeid] = TOTAL.get(nodeid, 0.0) + s


def modules():
    """Markdown: every test module's summed test time, longest first (conftest's
    LONGEST_FIRST order comes from it)."""
    per = defaultdict(float)
    count = defaultdict(int)
    for nodeid, seconds in TOTAL.items():
        name = nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
        per[name] += seconds
        count[name] += 1
    lines = ["| seconds | module | tests |", "|---|---|---|"]
    lines += ["| %.0f | `%s` | %d |" % (s, name, count[name]) for name, s in sorted(per.items(), key=lambda kv: -kv[1])]
    return "\n".join(lines)
