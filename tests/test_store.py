"""The host's store as the writer calls it: what a group of POSTs may bring. Real sqlite files."""

import orjson
import pytest

from edge.report import make_report
from edge.server import store
from tests.reports import window_summary


def test_a_post_of_an_unknown_kind_is_refused_and_its_group_stores_nothing(tmp_path):
    db = store.open_db(tmp_path / "edge.db")
    summary = window_summary(["a", "b"], [(1, 1), (0, 0)])
    report = orjson.loads(
        orjson.dumps(
            make_report(summary, "pi-a", "r" * 32, 0, "b" * 64, 1.8e9, 1.8e9 + 1), option=orjson.OPT_SERIALIZE_NUMPY
        )
    )  # as the host reads it
    with pytest.raises(ValueError, match="no kind 'report'.*reports, frames, labels"):
        store.store_posts(db, [("reports", "pi-a", [report]), ("report", "pi-a", [report])])
    assert store.device_reports(db, "pi-a") == [] and store.devices(db) == []
    assert store.store_posts(db, [("reports", "pi-a", [report])])[0].stored == [report["id"]]
