"""SshTailFollower against a real sshd on 127.0.0.1, started by the test with its own keys."""

from __future__ import annotations

import contextlib
import getpass
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_tail import ROOT, TAIL_MAIN, Collector, append, line, run_log, start_writer

from herbdesk.events.ssh_tail import (
    FOLLOWING,
    RECONNECTING,
    REMOTE_SCRIPT,
    UNPORTABLE,
    RemoteTarget,
    SshTailFollower,
    octal_arg,
    parse_remote_target,
)
from herbdesk.events.tail import DELETED

SSHD = "/usr/sbin/sshd"
SSH = shutil.which("ssh")
needs_ssh = pytest.mark.skipif(
    not (os.path.exists(SSHD) and SSH and shutil.which("ssh-keygen")),
    reason="needs OpenSSH: /usr/sbin/sshd (openssh-server) and ssh, ssh-keygen (openssh-client)",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sshd:
    """A private sshd: own host key, own authorized_keys, a high port, no PAM, foreground."""

    def __init__(self, d: Path) -> None:
        self.dir = d
        self.port = _free_port()
        self.user = getpass.getuser()
        self.key = d / "client_key"
        self.known_hosts = d / "known_hosts"
        for name in ("host_key", "client_key"):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True
            )
        (d / "authorized_keys").write_bytes((d / "client_key.pub").read_bytes())
        (d / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_key'}\n"
            f"AuthorizedKeysFile {d / 'authorized_keys'}\nPidFile {d / 'sshd.pid'}\n"
            "StrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PubkeyAuthentication yes\nLogLevel ERROR\nMaxStartups 100\n"
        )
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation dir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.dir / "sshd.log", "ab")  # noqa: SIM115 - the child holds it
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(self.dir / "sshd_config")], stderr=log, stdout=log
        )
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.dir / "sshd.log").read_text()
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("sshd did not start")

    def stop(self, sessions: bool = True) -> None:
        """Stop the listener and (like a host reboot) the per-connection processes it forked."""
        if self.proc is None:
            return
        children = _children(self.proc.pid) if sessions else []
        self.proc.terminate()
        self.proc.wait(5)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc = None

    def options(self) -> list[str]:
        return [
            f"UserKnownHostsFile={self.known_hosts}",
            "StrictHostKeyChecking=accept-new",
            "IdentitiesOnly=yes",
            "LogLevel=ERROR",
        ]


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


def _processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains text (to see that no remote tail was left behind)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if text.encode() in cmd and b"tail" in cmd:
                found.append(int(entry))
    return found


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    if not (os.path.exists(SSHD) and SSH and shutil.which("ssh-keygen")):
        pytest.skip("needs OpenSSH: /usr/sbin/sshd (openssh-server), ssh and ssh-keygen")
    server = Sshd(tmp_path_factory.mktemp("sshd"))
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def ssh_follow(sshd: Sshd) -> Iterator[Callable[..., tuple[SshTailFollower, Collector]]]:
    made: list[SshTailFollower] = []

    def make(path: Path, **kw: Any) -> tuple[SshTailFollower, Collector]:
        col = Collector()
        kw.setdefault("backoff_initial", 0.1)
        kw.setdefault("backoff_max", 1.0)
        f = SshTailFollower(
            RemoteTarget("127.0.0.1", str(path), sshd.user, sshd.port),
            col.on_events,
            on_status=col.on_status,
            identity_file=sshd.key,
            ssh_options=sshd.options(),
            **kw,
        )
        made.append(f)
        f.start()
        return f, col

    yield make
    for f in made:
        f.stop()


@needs_ssh
def test_remote_follow_sees_every_event_once(tmp_path: Path, ssh_follow: Any) -> None:
    n = 3000
    p = tmp_path / "events.jsonl"
    f, col = ssh_follow(p)
    writer = start_writer(p, n)
    assert writer.wait(60) == 0
    assert col.wait_seqs(n, timeout=30) == list(range(1, n + 1))
    time.sleep(0.3)
    assert len(col.events) == n and f.stats.bad_lines == 0
    assert f.offset == p.stat().st_size
    assert f.state == FOLLOWING and f.caught_up
    assert col.batches < n / 4
    f.stop()
    time.sleep(0.5)
    assert _processes_mentioning(str(p)) == [], "the remote tail outlived the connection"


@needs_ssh
def test_dropped_connection_resumes_at_the_right_byte(tmp_path: Path, ssh_follow: Any) -> None:
    n = 2000
    p = tmp_path / "events.jsonl"
    f, col = ssh_follow(p)
    # about 10 s of writing: time for three drops and reconnects even on a loaded machine
    # (with ~3 s, a slow reconnect let the writer finish after a single drop)
    writer = start_writer(p, n, seed=7, pause=0.04)
    drops = 0
    while writer.poll() is None and drops < 3:
        want = 300 * (drops + 1)
        if col.wait(lambda w=want: len(col.events) > w, timeout=10):
            pid = f.connection_pid
            if pid is not None:
                os.kill(pid, signal.SIGKILL)  # the network went away mid-stream
                drops += 1
                gone = pid
                col.wait(lambda g=gone: f.state == FOLLOWING and f.connection_pid not in (None, g))
    assert writer.wait(60) == 0
    assert drops >= 2
    assert col.wait_seqs(n, timeout=30) == list(range(1, n + 1)), "duplicated or missed events"
    assert f.stats.reconnects >= drops and f.stats.bad_lines == 0
    assert any(s.state == RECONNECTING for s in col.statuses)
    time.sleep(1.0)
    live = [pid for pid in _processes_mentioning(str(p)) if pid != f.connection_pid]
    assert len(live) <= 2, "killed connections left remote tails behind"  # current sh + tail


@needs_ssh
def test_sshd_restart_reconnects_with_backoff(tmp_path: Path, sshd: Sshd, ssh_follow: Any) -> None:
    p = tmp_path / "events.jsonl"
    append(p, b"".join(line(i) for i in range(1, 11)))
    f, col = ssh_follow(p)
    assert col.wait_seqs(10) == list(range(1, 11))
    sshd.stop()
    try:
        assert col.wait(lambda: f.state == RECONNECTING, timeout=10)
        append(p, b"".join(line(i) for i in range(11, 21)))
        time.sleep(1.5)  # a few refused attempts
    finally:
        sshd.start()
    assert col.wait_seqs(20, timeout=20) == list(range(1, 21))
    assert f.stats.reconnects >= 2
    msgs = " ".join(s.message for s in col.statuses if s.state == RECONNECTING)
    assert "ssh exited with 255" in msgs


@needs_ssh
def test_remote_truncation_replacement_and_late_file(tmp_path: Path, ssh_follow: Any) -> None:
    p = tmp_path / "sub dir" / "it's $(touch pwned) events.jsonl"  # quoting is exercised too
    p.parent.mkdir()
    f, col = ssh_follow(p)
    assert col.wait(lambda: f.state == "waiting_for_file", timeout=10)
    append(p, line(1) + line(2) + line(3))
    assert col.wait_seqs(3) == [1, 2, 3]
    with open(p, "wb") as fh:
        fh.write(line(1, run_id="r2"))
    assert col.wait(lambda: len(col.events) >= 4)
    assert (col.events[3].run_id, f.stats.truncations) == ("r2", 1)
    tmp = p.with_name("new.tmp")
    tmp.write_bytes(line(1, run_id="r3") + line(2, run_id="r3"))
    os.replace(tmp, p)
    assert col.wait(lambda: len(col.events) >= 6)
    assert [(e.run_id, e.seq) for e in col.events[4:]] == [("r3", 1), ("r3", 2)]
    assert f.stats.rotations == 1 and f.stats.bad_lines == 0
    p.unlink()
    assert col.wait(lambda: f.state == DELETED, timeout=10)
    assert not list(Path.cwd().glob("pwned")) and not list(p.parent.glob("pwned"))
    assert not Path.home().joinpath("pwned").exists()  # the isolated HOME
    assert not Path(pwd.getpwuid(os.getuid()).pw_dir).joinpath("pwned").exists()  # sshd's


@needs_ssh
def test_reconnect_after_remote_file_was_replaced(tmp_path: Path, ssh_follow: Any) -> None:
    p = tmp_path / "events.jsonl"
    append(p, b"".join(line(i) for i in range(1, 6)))
    f, col = ssh_follow(p, backoff_initial=1.5)
    col.wait_seqs(5)
    pid = f.connection_pid
    os.kill(pid, signal.SIGKILL)
    assert col.wait(lambda: f.state == RECONNECTING, timeout=10)
    tmp = p.with_name("x.tmp")  # while we are away: a new, longer file at the same path
    tmp.write_bytes(b"".join(line(i, run_id="r2") for i in range(1, 9)))
    os.replace(tmp, p)
    assert col.wait(lambda: len(col.events) >= 13, timeout=15)
    assert [e.run_id for e in col.events[5:]] == ["r2"] * 8
    assert f.stats.rotations == 1 and f.stats.reconnects == 1
    assert any(s.change == "rotated" for s in col.statuses)


@needs_ssh
def test_cli_tail_over_ssh(tmp_path: Path, sshd: Sshd) -> None:
    p = tmp_path / "events.jsonl"
    p.write_bytes(run_log())
    args = ["--jsonl", "--until-done", "-i", str(sshd.key)]
    for opt in sshd.options():
        args += ["-o", opt]
    target = f"ssh://{sshd.user}@127.0.0.1:{sshd.port}{p}"
    r = subprocess.run(
        [sys.executable, "-c", TAIL_MAIN, *args, target],
        capture_output=True,
        timeout=30,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == len(p.read_bytes().splitlines())


# ----------------------------------------------------------------- target validation


def test_parse_remote_target_accepts_the_usual_forms() -> None:
    assert parse_remote_target("alice@lab.example.org:/srv/runs/r1/events.jsonl") == RemoteTarget(
        "lab.example.org", "/srv/runs/r1/events.jsonl", "alice"
    )
    assert parse_remote_target("hpc01:/scratch/e.jsonl") == RemoteTarget(
        "hpc01", "/scratch/e.jsonl"
    )
    assert parse_remote_target("ssh://bob@h.example:2222/data/e.jsonl") == RemoteTarget(
        "h.example", "/data/e.jsonl", "bob", 2222
    )
    assert parse_remote_target("me@[::1]:/e.jsonl") == RemoteTarget("::1", "/e.jsonl", "me")
    t = RemoteTarget("h", "/a b/e.jsonl", "u", 22)
    assert parse_remote_target(str(t)) == t
    # a '/' before the first ':' makes it a local path (as for scp): opened, never passed to ssh
    for local in [
        "/srv/e.jsonl",
        "runs/r1/events.jsonl",
        "./a:b",
        "events.jsonl",
        "dir/x:/y",
        "-oProxyCommand=touch /tmp/pwned:/p",
    ]:
        assert parse_remote_target(local) is None, local


@pytest.mark.parametrize(
    "hostile",
    [
        "-oProxyCommand=touch${IFS}pwned:/p",
        "-oProxyCommand=x:/p",
        "ssh://-oProxyCommand=x/p",
        "user@-oProxyCommand=x:/p",
        "-l:/p",
        "h:/p\nrm -rf ~",
        "h:/p\x00x",
        "h:relative/events.jsonl",
        "h:",
        "bad user@h:/p",
        "u;id@h:/p",
        "h$(id):/p",
        "ssh://h:99999/p",
        "ssh://h/p?x=1",
    ],
)
def test_hostile_targets_are_rejected(hostile: str) -> None:
    with pytest.raises(ValueError):
        parse_remote_target(hostile)


def test_command_is_an_argv_with_a_quoted_path() -> None:
    path = "/data/it's; rm -rf ~ $(id) `id`/events.jsonl"
    f = SshTailFollower(
        RemoteTarget("host", path, "u", 2200),
        lambda b: None,
        ssh_options=["StrictHostKeyChecking=accept-new"],
    )
    cmd = f.build_command(123, "456")
    assert cmd[0] == "ssh" and cmd[-3:-1] == ["--", "host"]
    assert cmd.index("BatchMode=yes") > cmd.index(
        "StrictHostKeyChecking=accept-new"
    )  # user options first: for ssh the first value wins
    assert cmd[cmd.index("-p") + 1] == "2200"
    import shlex

    remote = shlex.split(cmd[-1])  # what a POSIX login shell sees; other shells: below
    assert remote[:3] == ["sh", "-c", REMOTE_SCRIPT] and not UNPORTABLE.search(REMOTE_SCRIPT)
    assert remote[3:] == ["herbdesk-tail", octal_arg(path), "123", "_456"]
    assert (
        remote[4].isdigit()
        and bytes(int(remote[4][i : i + 3], 8) for i in range(0, len(remote[4]), 3))
        == path.encode()
    )
    with pytest.raises(ValueError):
        f.build_command(0, "1; id")
    with pytest.raises(ValueError):
        SshTailFollower("h:/p", lambda b: None, ssh_options=["-oProxyCommand=x"])
    with pytest.raises(ValueError):
        SshTailFollower("h:/p", lambda b: None, ssh_options=["ProxyCommand=x\nHost *"])


LOGIN_SHELLS = [
    sh for sh in ("sh", "dash", "bash", "zsh", "fish", "tcsh", "csh") if shutil.which(sh)
]
HOSTILE_PATHS = [
    "x\\'\";touch pwned;#",
    "it's $(touch pwned) `touch pwned` ${HOME} $HOME ~ %1 !! !$ * ? [a] {a,b} & | ; < > ( )",
    "back\\slash \\' \\\\ \\n\ttab ünïcödé 日本 \x7f",
    "-n -e --",
]


@pytest.mark.parametrize("shell", LOGIN_SHELLS)
def test_remote_command_means_the_same_to_every_login_shell(tmp_path: Path, shell: str) -> None:
    """ssh hands the command string to the user's login shell, whatever it is: through each
    shell here the script gets the path byte for byte, and no injected command runs."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    for i, name in enumerate(HOSTILE_PATHS):
        d = tmp_path / f"d{i}"
        d.mkdir()
        p = d / name
        p.write_bytes(b"0123456789\n")
        f = SshTailFollower(RemoteTarget("host", str(p)), lambda b: None)
        for start, ident in ((-1, ""), (3, str(p.stat().st_ino)), (0, "-")):
            remote = f.build_command(start, ident)[-1]
            r = subprocess.run(
                [shell, "-c", remote],
                cwd=d,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=20,
            )
            head = r.stdout.split(b"\n", 1)[0].decode()
            want = 11 if start < 0 else (0 if ident == "-" else start)
            assert head == f"herbdesk-tail 1 {p.stat().st_ino} 11 {want}", (shell, name, r)
        assert sorted(x.name for x in d.iterdir()) == [name], (shell, name)
    assert not list(tmp_path.rglob("pwned"))


@needs_ssh
def test_reconnect_now_skips_the_backoff(tmp_path: Path, ssh_follow: Any) -> None:
    p = tmp_path / "events.jsonl"
    append(p, line(1) + line(2))
    f, col = ssh_follow(p, backoff_initial=20.0)
    assert col.wait_seqs(2) == [1, 2]
    first = f.connection_pid
    f.reconnect()  # e.g. the user pressed "Reconnect"
    assert col.wait(lambda: f.state == FOLLOWING and f.connection_pid not in (None, first), 5)
    append(p, line(3))
    assert col.wait_seqs(3) == [1, 2, 3]
    assert f.stats.reconnects == 1
