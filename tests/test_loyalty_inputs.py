"""Bad input never crashes and never books: junk bodies, inconsistent deltas, a rules file."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from agent.errors import AgentError
from agent.loyalty.directory import CardIn, DirectoryDelta
from agent.loyalty.requests import ReturnRequest, SaleRequest
from agent.loyalty.service import LoyaltyService
from agent.store.db import Database
from tests.loyalty_fixtures import FakeSessions, migrations, program

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=timezone.utc)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["session_id", "receipt", "lines", "sku", "x"]), json_values, max_size=4))
def test_junk_sale_and_return_bodies_only_raise_validation_errors(body):
    for model in (SaleRequest, ReturnRequest):
        try:
            model.model_validate(body)
        except ValidationError:
            pass


def test_inconsistent_delta_changes_nothing(tmp_path):
    db = Database(tmp_path / "a.db", migrations())
    service = LoyaltyService(db, station_id="ST01", sessions=FakeSessions())
    bad = DirectoryDelta(seq=3, as_of=NOW, cards=[
        CardIn(card_number="OK-1", state="unassigned"),
        CardIn(card_number="C9", account_id="NO-SUCH-ACCOUNT", role="primary", state="issued"),
    ])
    with pytest.raises(AgentError) as err:
        service.apply_directory_delta(bad)
    assert err.value.code == "directory_delta_invalid"
    assert db.read(lambda c: c.execute("SELECT COUNT(*) FROM loyalty_cards").fetchone()[0]) == 0
    assert db.read(lambda c: c.execute("SELECT last_seq FROM loyalty_directory_state").fetchone()[0]) == 0
    db.close()


def test_rules_from_local_file_until_head_office_sends_a_program(tmp_path):
    from agent.loyalty.config import LoyaltySettings

    path = tmp_path / "rules.json"
    path.write_text(program().model_dump_json(), encoding="utf-8")
    db = Database(tmp_path / "a.db", migrations())
    service = LoyaltyService(db, station_id="ST01", sessions=FakeSessions(),
                             settings=LoyaltySettings(rules_file=path))
    assert service.rules().version == "p1"
    newer = json.loads(program().model_dump_json()) | {"version": "p2"}
    service.set_rule_program(type(program()).model_validate(newer))
    assert service.rules().version == "p2"
    # A fresh service (restart) reads head office's program from the database, not the file.
    assert LoyaltyService(db, station_id="ST01", sessions=FakeSessions(),
                          settings=LoyaltySettings(rules_file=path)).rules().version == "p2"
    db.close()
