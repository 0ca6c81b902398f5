"""deploy/compose.yaml: PostgreSQL and shard processes that together run every shard once,
with commands the real command line accepts."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.__main__ import build_parser

COMPOSE = Path(__file__).parents[1] / "deploy" / "compose.yaml"


def test_the_shard_services_run_every_shard_once_on_one_database() -> None:
    services = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]
    bots = {name: s for name, s in services.items() if name != "postgres"}
    assert len(bots) >= 2
    runs = [build_parser().parse_args(s["command"]) for s in bots.values()]
    (count,) = {run.shard_count for run in runs}
    assert sorted(shard for run in runs for shard in run.shard_ids) == list(range(count))
    (database,) = {s["environment"]["MASSAGE_BOT_DB"] for s in bots.values()}
    assert database.startswith("postgresql://") and "@postgres:5432/" in database
    assert all(s["depends_on"]["postgres"]["condition"] == "service_healthy" for s in bots.values())
