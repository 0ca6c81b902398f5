"""The real bot as its own process (`python -m bot run`) against a fake Discord, as it runs
in production: pointed at the fake by ``DISCORD_API_BASE`` and ``DISCORD_GATEWAY_URL``, on
some shards, with a store given by ``--db``. For tests and benchmarks of several processes
sharing one database."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.e2e.fake_discord import FakeDiscord

START_SECONDS = 60.0
READY_LINE = "ready to serve"  # what the bot logs once it has restored its sessions


class BotProcess:
    """One `massage-bot run` process, running shards `shard_ids` of `shard_count`."""

    def __init__(
        self, fake: FakeDiscord, db: str, workdir: Path, shard_count: int,
        shard_ids: tuple[int, ...], *, knowledge: Path | None = None,
        environment: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        self.fake = fake
        self.shard_ids = shard_ids
        self.name = f"shards-{'-'.join(map(str, shard_ids))}-of-{shard_count}"
        self.log_path = workdir / f"{self.name}.log"
        self.arguments = ["--db", db, "--shard-count", str(shard_count),
                          "--shard-ids", ",".join(map(str, shard_ids))]  # fmt: skip
        if knowledge is not None:
            self.arguments += ["--knowledge", str(knowledge)]
        self.environment = {
            **os.environ,
            "DISCORD_TOKEN": fake.token,
            "DISCORD_API_BASE": fake.api_base,
            "DISCORD_GATEWAY_URL": fake.gateway_url,
            "MASSAGE_BOT_PICTURES": str(workdir / "pictures"),
            **(environment or {}),
        }
        self.environment.pop("DISCORD_DEV_GUILD", None)
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> BotProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", "run", *self.arguments],
                env=self.environment, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
            )  # fmt: skip
        return self

    async def ready(self, timeout: float = START_SECONDS) -> None:
        """Wait until the process has restored its sessions (it logs so) and the fake's
        gateway has its shards ready."""
        assert self.process is not None
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}: "
                                   f"{self.last_line()}")  # fmt: skip
            try:
                if READY_LINE in self.log():
                    await self.fake.wait_until_ready(self.shard_ids, timeout=0.5)
                    return
                await asyncio.sleep(0.05)
            except TimeoutError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{self.name} was not ready; see {self.log_path}")

    async def exit_status(self, timeout: float = START_SECONDS) -> int:
        """Wait until the process exits by itself; its exit status."""
        assert self.process is not None
        return await asyncio.to_thread(self.process.wait, timeout)

    def kill(self) -> None:
        """SIGKILL: the process dies at once, as in a crash."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        """SIGINT, as a person pressing Ctrl-C; killed if it has not stopped in 20 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def last_line(self) -> str:
        lines = self.log().strip().splitlines()
        return lines[-1] if lines else ""
