"""liftos.planning.audit: the decision audit is append-only and hash-chained; any edit,
deletion or reordering is named, and concurrent appends never fork it."""

from __future__ import annotations

import json
import multiprocessing
from itertools import pairwise

import pytest

from liftos.home import DataHome
from liftos.planning.audit import ChainBroken, DecisionLog


def _log(tmp_path, records: int = 4) -> DecisionLog:
    log = DecisionLog("acme", DataHome(tmp_path))
    for k in range(records):
        log.append("proposal" if k % 2 == 0 else "decision",
                   {"objective": "expected", "lift_mean": 1000.0 * k, "verdict": "approved",
                    "by": "ana", "comment": f"record {k}"})
    return log


def test_records_chain_and_verify(tmp_path):
    log = _log(tmp_path)
    records = log.verify()
    assert [r.seq for r in records] == [1, 2, 3, 4]
    assert all(b.prev_hash == a.hash for a, b in pairwise(records))
    assert records[1].describe().startswith("#2 ") and "approved by ana" in records[1].describe()


def _lines(log: DecisionLog) -> list[str]:
    return log.path.read_text().splitlines()


def _write(log: DecisionLog, lines: list[str]) -> None:
    log.path.write_text("\n".join(lines) + "\n")


def test_an_edited_byte_is_named(tmp_path):
    log = _log(tmp_path)
    lines = _lines(log)
    lines[2] = lines[2].replace("record 2", "record 9")
    _write(log, lines)
    with pytest.raises(ChainBroken, match=r"line 3: record #3 was edited after it was written"):
        log.verify()


def test_an_edit_that_recomputes_its_own_hash_still_breaks_the_next_link(tmp_path):
    from liftos.planning.audit import _digest

    log = _log(tmp_path)
    lines = _lines(log)
    forged = json.loads(lines[1])
    forged["payload"]["by"] = "mallory"
    forged["hash"] = _digest(forged["seq"], forged["at"], forged["kind"], forged["payload"],
                             forged["prev_hash"])
    lines[1] = json.dumps(forged)
    _write(log, lines)
    with pytest.raises(ChainBroken, match=r"line 3: record #3 does not follow the record "):
        log.verify()


def test_deleted_and_reordered_records_are_named(tmp_path):
    log = _log(tmp_path)
    lines = _lines(log)
    _write(log, lines[:1] + lines[2:])
    with pytest.raises(ChainBroken, match=r"line 2: record #3 where #2 belongs"):
        log.verify()
    _write(log, [lines[1], lines[0], *lines[2:]])
    with pytest.raises(ChainBroken, match=r"line 1: record #2 where #1 belongs"):
        log.verify()
    _write(log, lines[:3])
    with pytest.raises(ChainBroken, match=r"the last record is #3 but the head names another"):
        log.verify()
    log.path.unlink()
    with pytest.raises(ChainBroken, match="missing, but decisions.head says records"):
        log.verify()


def test_a_broken_chain_is_never_extended(tmp_path):
    log = _log(tmp_path)
    _write(log, _lines(log)[1:])
    with pytest.raises(ChainBroken):
        log.append("proposal", {"objective": "cvar"})
    assert len(_lines(log)) == 3


def _append_many(root: str, count: int) -> None:
    log = DecisionLog("acme", DataHome(root))
    for k in range(count):
        log.append("proposal", {"objective": "expected", "lift_mean": float(k)})


def test_concurrent_proposals_never_fork_the_chain(tmp_path):
    workers = [multiprocessing.get_context("fork").Process(target=_append_many,
                                                           args=(str(tmp_path), 15))
               for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    records = DecisionLog("acme", DataHome(tmp_path)).verify()
    assert len(records) == 60 and len({r.prev_hash for r in records}) == 60


def test_rollback_reinstates_the_previous_approved_plan_as_a_new_record(tmp_path, monkeypatch,
                                                                       capsys):
    from liftos_app.cli import main

    monkeypatch.setenv("LIFTOS_HOME", str(tmp_path))
    log = DecisionLog("acme")
    for k, weekly in enumerate(({"tv": 100.0}, {"tv": 200.0})):
        proposal = log.append("proposal", {"objective": "expected", "lift_mean": 1.0})
        log.append("decision", {"proposal_seq": proposal.seq, "verdict": "approved",
                                "by": "ana", "weekly": weekly, "comment": str(k)})
    log.append("decision", {"proposal_seq": 3, "verdict": "rejected", "by": "bo",
                            "weekly": {"tv": 999.0}})
    assert main(["plan", "rollback", "--tenant", "acme", "--by", "cy", "--comment", "too hot"]) == 0
    assert "rolled back to decision #2 (record #6): tv 100" in capsys.readouterr().out
    records = log.verify()  # the chain is intact: nothing was edited
    assert [r.kind for r in records][-1] == "rollback" and len(records) == 6
    assert records[-1].payload["replaces"] == 4
    assert main(["plan", "rollback", "--tenant", "acme", "--by", "cy"]) == 2
    assert "no earlier approved plan to go back to (1 approved plan(s) in force)" in (
        capsys.readouterr().err)
