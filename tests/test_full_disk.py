"""A full disk: the console says so, keeps answering, and quits or ends on a signal with
what was saved intact. The store lives on a real, tiny filesystem (tmpfs) that the test
fills up."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import require
from tests.test_console import REPO, ConsoleProcess

DISK_BYTES = 1024 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB filesystem of its own, mounted for the test (this needs root)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(mount)]
    mounted = (
        os.geteuid() == 0
        and shutil.which("mount") is not None
        and subprocess.run(command, capture_output=True, check=False).returncode == 0
    )
    require(mounted, "a tmpfs of its own (root)", "run the tests as root (CI does)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


def fill(disk: Path) -> Path:
    """Write a file until the filesystem has no room left."""
    filler = disk / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(descriptor, b"\0" * 512)
    except OSError as error:
        assert error.errno == errno.ENOSPC
    finally:
        os.close(descriptor)
    return filler


@pytest.fixture
def spawn_on(knowledge_dir: Path) -> Iterator[Callable[..., ConsoleProcess]]:
    started: list[ConsoleProcess] = []

    def start(db: Path, time_scale: float = 1.0) -> ConsoleProcess:
        started.append(ConsoleProcess(db, knowledge_dir, time_scale=time_scale))
        return started[-1]

    yield start
    for process in started:
        if process.process.poll() is None:
            process.kill()


def test_a_full_disk_is_named_and_the_console_keeps_answering(
    small_disk: Path, spawn_on: Callable[..., ConsoleProcess]
) -> None:
    db = small_disk / "store.sqlite3"
    console = spawn_on(db, time_scale=30)  # a 150 s step lasts 5 s
    console.send("start tiny")
    console.expect("Step 1 of 4")
    filler = fill(small_disk)
    console.send("next")
    refused = console.expect("Nothing changed")
    assert "the disk is full" in refused and "rollback" not in refused
    console.send("should I use oil")
    console.expect("unscented oil")  # the answer comes all the same
    assert "disk is full" in console.expect("not saved")
    assert "disk is full" in console.expect("Cannot save the session's progress", timeout=15)
    console.send("quit")
    code, output = console.finish(timeout=10)
    assert code == 0 and "Could not pause your session" in output
    filler.unlink()  # room again: what was saved is intact
    again = spawn_on(db, time_scale=30)
    assert "Tiny test routine" in again.expect("Unfinished session")
    again.send("stop")
    code, output = again.finish()
    assert code == 0 and "Session stopped" in output


def test_a_signal_ends_the_console_on_a_full_disk(
    small_disk: Path, spawn_on: Callable[..., ConsoleProcess]
) -> None:
    console = spawn_on(small_disk / "store.sqlite3")
    console.send("start tiny")
    console.expect("Step 1 of 4")
    fill(small_disk)
    console.process.send_signal(signal.SIGTERM)
    assert console.process.wait(10) == 0
    assert "Could not pause your session" in console.expect("Could not pause")


@pytest.fixture
def read_only_disk(tmp_path: Path) -> Iterator[Path]:
    """A filesystem mounted read-only, where not even root may create a file."""
    mount = tmp_path / "read-only"
    mount.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", "ro,size=65536", "tmpfs", str(mount)]
    mounted = (
        os.geteuid() == 0
        and subprocess.run(command, capture_output=True, check=False).returncode == 0
    )
    require(mounted, "a read-only tmpfs of its own (root)", "run the tests as root (CI does)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


def test_a_new_store_on_a_read_only_disk_is_one_line(
    read_only_disk: Path, knowledge_dir: Path
) -> None:
    db = read_only_disk / "store.sqlite3"
    for _ in range(5):  # the stray traceback, when there was one, came now and then
        result = subprocess.run(
            [sys.executable, "-m", "bot", "console", "--db", str(db), "--knowledge",
             str(knowledge_dir)],
            input="", capture_output=True, text=True, timeout=30, cwd=REPO,
        )  # fmt: skip
        assert result.returncode == 1
        assert result.stderr == (
            f"massage-bot: cannot open {db} (check the folder exists and is writable)\n"
        )
