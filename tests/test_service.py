"""`edge-pose service print|install|uninstall`: the unit's content, systemd-analyze verify, dry runs, --root."""
import argparse
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from edge_pose import service

REPO = Path(__file__).resolve().parents[1]


def run(argv, capsys):
    p = argparse.ArgumentParser(prog="edge-pose service")
    service.add_arguments(p)
    rc = service.main(p.parse_args(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def parse_unit(text):
    """{section: {key: [values]}}: unit files repeat keys (DeviceAllow=), so no configparser."""
    units, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = units.setdefault(line.strip("[]"), {})
            continue
        key, value = line.split("=", 1)
        section.setdefault(key, []).append(value)
    return units


def test_template_in_scripts_is_the_packaged_one():
    assert (REPO / "scripts" / "edge-pose.service.in").read_text() == service.template_text()
    assert "source:" in service.default_config_text()


def test_print_has_the_service_settings_and_the_absolute_executable(capsys):
    rc, out, _ = run(["print"], capsys)
    assert rc == 0
    unit = parse_unit(out)
    s = unit["Service"]
    exe = service.find_executable()
    assert os.path.isabs(exe[0]) and os.access(exe[0], os.X_OK)
    assert s["ExecStart"] == [" ".join(exe + ["run", "--config", "/etc/edge-pose/config.yaml", "--headless"])]
    expected = {"Type": "notify", "NotifyAccess": "main", "User": "edge-pose", "Restart": "on-failure",
                "RestartSec": "5", "WatchdogSec": "30", "ProtectSystem": "strict", "PrivateTmp": "yes",
                "NoNewPrivileges": "yes", "StateDirectory": "edge-pose", "LogsDirectory": "edge-pose",
                "ProtectKernelTunables": "yes", "DevicePolicy": "closed", "StandardOutput": "journal"}
    for key, value in expected.items():
        assert s[key] == [value], key
    assert s["ProtectHome"][0] in ("yes", "read-only")
    assert s["RestrictAddressFamilies"][0].split()[:3] == ["AF_UNIX", "AF_INET", "AF_INET6"]
    assert {"char-video4linux rw", "char-nvidia* rw", "char-nvhost* rw"} <= set(s["DeviceAllow"])
    groups = [g for g in ("video", "render") if service._group_exists(g)]
    assert s.get("SupplementaryGroups", [""]) == ([" ".join(groups)] if groups else [""])
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    assert "@" not in out.replace("@-fields", "")


def test_print_options(capsys, tmp_path):
    exe = tmp_path / "my bin" / "edge-pose"
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    rc, out, _ = run(["print", "--user", "cam", "--watchdog-sec", "12", "--restart-sec", "2.5", "--groups", "video",
                      "--writable", "/data/out", "--exec", str(exe), "--config", "/etc/ep/c 50%.yaml",
                      "--protect-home", "tmpfs"], capsys)
    assert rc == 0
    s = parse_unit(out)["Service"]
    assert s["ExecStart"] == ['"' + str(exe) + '" run --config "/etc/ep/c 50%%.yaml" --headless']
    assert s["User"] == ["cam"] and s["WatchdogSec"] == ["12"] and s["RestartSec"] == ["2.5s"]
    assert s["SupplementaryGroups"] == ["video"] and s["ReadWritePaths"] == ["-/data/out"]
    assert s["ProtectHome"] == ["tmpfs"]
    rc, out, _ = run(["print", "--no-device-policy"], capsys)
    assert "DevicePolicy" not in parse_unit(out)["Service"] and "DeviceAllow" not in parse_unit(out)["Service"]


def test_device_nodes_present_are_listed_and_home_installs_get_read_only():
    lines = service.device_lines(globs=("/dev/nul*", "/dev/no-such-node*"))
    assert "DeviceAllow=/dev/null rw" in lines and lines[0] == "DevicePolicy=closed"
    assert service.protect_home_for(["/home/ann/venv/bin/edge-pose"]) == "read-only"
    assert service.protect_home_for(["/root/.pyenv/versions/3.10/bin/python3.10"]) == "read-only"
    assert service.protect_home_for(["/usr/local/bin/edge-pose", "/opt/ep/lib/edge_pose"]) == "yes"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify_accepts_the_unit(capsys, tmp_path):
    """verify checks the syntax, every key and that ExecStart's program exists (not the user)."""
    link = tmp_path / "with space" / "edge-pose"  # a path that needs quoting
    link.parent.mkdir()
    link.symlink_to(service.find_executable()[0])
    for argv in (["print"], ["print", "--exec", str(link), "--writable", "/data/out", "--user", "nobody-here",
                             "--config", "/etc/ep/50% $HOME.yaml"]):
        rc, out, _ = run(argv, capsys)
        unit = tmp_path / "edge-pose.service"
        unit.write_text(out)
        proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=120)
        ours = [x for x in (proc.stdout + proc.stderr).splitlines() if "edge-pose.service" in x]
        assert proc.returncode == 0 and not ours, proc.stdout + proc.stderr
    # and it does reject a unit whose program is missing
    unit.write_text(out.replace(str(link), str(tmp_path / "missing")))
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "is not executable" in proc.stderr


def test_install_and_uninstall_dry_run_change_nothing(capsys, tmp_path):
    config = tmp_path / "etc" / "config.yaml"
    user = "ep-test-no-such-user"
    rc, out, _ = run(["install", "--dry-run", "--user", user, "--config", str(config)], capsys)
    assert rc == 0
    assert "would: useradd --system --user-group --home-dir /var/lib/edge-pose" in out and user in out
    assert "would: write %s (from the default config)" % config in out
    assert "would: write /etc/systemd/system/edge-pose.service" in out
    steps = [x[len("would: "):] for x in out.splitlines() if x.startswith("would: systemctl")]
    assert steps == ["systemctl daemon-reload", "systemctl enable edge-pose.service",
                     "systemctl restart edge-pose.service"]
    assert not config.exists()
    rc, out, _ = run(["install", "--dry-run", "--no-start", "--user", user, "--config", str(config)], capsys)
    assert "would: systemctl enable edge-pose.service" in out and "restart" not in out
    rc, out, _ = run(["uninstall", "--dry-run", "--purge", "--user", user, "--config", str(config)], capsys)
    assert rc == 0
    for step in ("systemctl disable --now edge-pose.service", "remove /etc/systemd/system/edge-pose.service",
                 "remove %s" % config, "remove /var/lib/edge-pose", "userdel %s" % user):
        assert "would: " + step in out, step
    assert "remove %s\n" % config.parent not in out  # a folder that is not edge-pose's own: the file only
    rc, out, _ = run(["uninstall", "--dry-run", "--config", str(config)], capsys)
    assert "userdel" not in out and "remove /var/lib" not in out and "kept" in out
    rc, out, _ = run(["uninstall", "--dry-run", "--purge"], capsys)
    assert "would: remove /etc/edge-pose\n" in out  # its own folder, removed whole


def test_install_into_a_root_then_uninstall(capsys, tmp_path):
    root = tmp_path / "rootfs"
    rc, out, _ = run(["install", "--root", str(root), "--watchdog-sec", "20"], capsys)
    assert rc == 0 and "systemctl" not in out.replace("no systemctl here", "").split("on the target:")[0]
    unit = root / "etc/systemd/system/edge-pose.service"
    config = root / "etc/edge-pose/config.yaml"
    _, printed, _ = run(["print", "--watchdog-sec", "20"], capsys)
    assert unit.read_text() == printed
    assert config.read_text() == service.default_config_text()
    assert stat.S_IMODE(unit.stat().st_mode) == 0o644

    # a re-install keeps an edited config; --config-template only applies where there is none
    config.write_text("source: csi://0\n")
    template = tmp_path / "site.yaml"
    template.write_text("source: rtsp://cam/stream\nmodel: resnet18\n")
    rc, out, _ = run(["install", "--root", str(root), "--config-template", str(template)], capsys)
    assert rc == 0 and config.read_text() == "source: csi://0\n" and "keeping the existing config" in out
    config.unlink()
    run(["install", "--root", str(root), "--config-template", str(template)], capsys)
    assert config.read_text() == template.read_text()

    results = root / "var/lib/edge-pose/frames.jsonl"
    results.parent.mkdir(parents=True)
    results.write_text("{}\n")
    rc, out, _ = run(["uninstall", "--root", str(root)], capsys)
    assert rc == 0 and not unit.exists() and config.exists() and results.exists()
    rc, out, _ = run(["uninstall", "--root", str(root), "--purge"], capsys)
    assert rc == 0 and not config.parent.exists() and not results.parent.exists()


def test_clear_errors_without_root_or_systemd(capsys, monkeypatch):
    monkeypatch.setattr(service.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(service, "systemd_running", lambda: True)
    rc, _, err = run(["install"], capsys)
    assert rc == 1 and "install needs root" in err and "sudo" in err
    monkeypatch.setattr(service.os, "geteuid", lambda: 0)
    monkeypatch.setattr(service, "systemd_running", lambda: False)
    rc, _, err = run(["uninstall"], capsys)
    assert rc == 1 and "systemd is not running" in err and "--root" in err
    rc, _, err = run(["install", "--config-template", "/no/such.yaml", "--root", "/tmp/unused-root-xyz"], capsys)
    assert rc == 1 and "--config-template /no/such.yaml" in err
    rc, _, err = run(["print", "--exec", "/no/such/edge-pose"], capsys)
    assert rc == 1 and "not an executable" in err
