"""``loyalty-hub`` as an operator types it: Spanish first, exit code 2 for bad usage or
configuration, secrets never echoed, nothing changed by a refused command."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from hub.config import ConfigError, load_settings
from tests.hub.conftest import ROOT, needs_services
from tests.hub.postgres import Postgres


def hub(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_HUB_")}
    return subprocess.run([sys.executable, "-m", "hub.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**clean, **(env or {})}, timeout=60)


@needs_services
def test_migrate_creates_then_reports_up_to_date_and_run_refuses_an_unmigrated_database(
        postgres_server: Postgres) -> None:
    with psycopg.connect(postgres_server.url, autocommit=True) as admin:
        admin.execute("CREATE DATABASE cli_fresh")
    url = postgres_server.url.rsplit("/", 1)[0] + "/cli_fresh"
    refused = hub("run", "--mqtt-url", "mqtt://127.0.0.1:1", "--database-url", url)
    assert refused.returncode == 2 and "loyalty-hub migrate" in refused.stderr and "migraciones" in refused.stderr
    first = hub("migrate", "--database-url", url)
    assert first.returncode == 0 and "migraciones aplicadas: hub_001_core" in first.stderr
    again = hub("--lang", "en", "migrate", "--database-url", url)
    assert again.returncode == 0 and "the database is up to date" in again.stderr


def test_run_needs_both_urls_and_says_which() -> None:
    result = hub("run", "--database-url", "postgresql://hub@127.0.0.1:1/x")
    assert result.returncode == 2
    assert "falta mqtt.url" in result.stderr and "--mqtt-url" in result.stderr


def test_a_password_in_a_url_is_refused_without_echoing_it() -> None:
    result = hub("run", "--mqtt-url", "mqtt://ho:s3cr3t-value@broker:1883", "--database-url", "postgresql://x@h/d")
    assert result.returncode == 2 and "mqtt.url" in result.stderr and "s3cr3t-value" not in result.stderr


def test_unknown_environment_variable_and_file_key_are_errors(tmp_path: Path) -> None:
    typo = hub("check-config", env={"LOYALTY_HUB_DATABSE__URL": "postgresql://x@h/d"})
    assert typo.returncode == 2 and "LOYALTY_HUB_DATABSE__URL" in typo.stderr and "database" in typo.stderr
    config = tmp_path / "hub.toml"
    config.write_text('[ingest]\ngap_grace = 3\n', encoding="utf-8")
    bad_key = hub("check-config", "--config", str(config))
    assert bad_key.returncode == 2 and "ingest.gap_grace" in bad_key.stderr


def test_precedence_file_then_environment_then_flags_and_masked_password(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text('[mqtt]\nurl = "mqtt://file:1883"\npassword = "hunter2-secret"\n[ingest]\nworkers = 2\n'
                      'gap_grace_s = 7\n', encoding="utf-8")
    shown = hub("check-config", "--config", str(config), "--mqtt-url", "mqtt://flag:1883",
                env={"LOYALTY_HUB_INGEST__GAP_GRACE_S": "9"})
    assert shown.returncode == 0, shown.stderr
    assert '"url": "mqtt://flag:1883"' in shown.stdout and '"gap_grace_s": 9.0' in shown.stdout
    assert '"workers": 2' in shown.stdout and "hunter2-secret" not in shown.stdout and "********" in shown.stdout


def test_settings_loader_refuses_bad_values_by_name() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(None, {"ingest": {"workers": 0}, "database": {"url": "mysql://x"}}, environ={})
    text = str(err.value)
    assert "ingest.workers" in text and "database.url" in text
