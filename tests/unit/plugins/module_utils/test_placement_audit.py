"""placement_audit's read of Longhorn's taint-toleration (longhorn_namespace): one GET,
only when the taints drop a DaemonSet longhorn-manager manages."""

from ansible_collections.homelab.k8s_ha.plugins.module_utils import placement_audit

SETTING = {"metadata": {"name": "taint-toleration", "namespace": "longhorn-system"}, "value": ""}


class Reads(object):
    def __init__(self, served=True, setting="the setting"):
        self.asked, self._served = [], served
        self.setting = SETTING if setting == "the setting" else setting

    def served(self, kind, api_version):
        self.asked.append(("served", kind, api_version))
        return self._served

    def get(self, kind, api_version, name, namespace=None):
        self.asked.append(("GET", kind, name, namespace))
        return self.setting


def row(manager, dropped):
    return {"namespace": "longhorn-system", "name": "longhorn-manager", "manager": manager, "dropped": dropped}


def test_the_setting_is_read_only_when_a_longhorn_daemonset_is_dropped():
    taint_toleration = placement_audit._taint_toleration  # pylint: disable=protected-access
    m = Reads()
    assert taint_toleration(m, [row("longhorn-manager", ["worker-1"])], "longhorn-system") == [SETTING]
    assert m.asked[-1] == ("GET", "Setting", "taint-toleration", "longhorn-system")
    assert m.asked[0] == ("served", "Setting", "longhorn.io/v1beta2")
    for rows in ([row("longhorn-manager", [])], [row("DaemonSet/other", ["worker-1"])], []):
        m = Reads()
        assert taint_toleration(m, rows, "longhorn-system") == [] and m.asked == []
    # Longhorn not installed, or no such setting
    assert taint_toleration(Reads(served=False), [row("longhorn-manager", ["worker-1"])], "longhorn-system") == []
    assert taint_toleration(Reads(setting=None), [row("longhorn-manager", ["worker-1"])], "longhorn-system") == []
