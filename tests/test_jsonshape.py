"""liftos.ingest.jsonshape: a response's shape, and drift against the stored snapshot."""

from __future__ import annotations

from decimal import Decimal

from liftos.ingest.jsonshape import drift, flatten, shape


def test_shape_names_every_path_lists_share_one_and_free_maps_collapse():
    response = {"data": [{"id": "1", "attributes": {"count": Decimal("2.5"), "ok": True,
                                                    "measurements": {"a": 1, "b": 2}}}]}
    assert shape(response, free=frozenset({"measurements"})) == {
        "data:array", "data[]:object", "data[].id:string", "data[].attributes:object",
        "data[].attributes.count:number", "data[].attributes.ok:boolean",
        "data[].attributes.measurements:object", "data[].attributes.measurements.*:number"}


def test_a_renamed_parent_is_one_move_not_a_cascade_of_additions():
    old = {"data[].attributes:object", "data[].attributes.value:number"}
    new = {"data[].fields:object", "data[].fields.value:number"}
    found = drift("metric-aggregates", old, new)
    assert found.moved == {"data[].attributes.value": "data[].fields.value"}
    assert "moved data[].attributes.value -> data[].fields.value" in found.describe()


def test_nulls_are_not_drift_and_real_changes_are():
    old = {"a:string", "b:number"}
    assert not drift("e", old, {"a:null", "b:number"}).removed
    changed = drift("e", old, {"a:string", "c:number"})
    assert changed and changed.added == ("c",) and changed.removed == ("b",)


def test_flatten_joins_nested_keys_and_keeps_lists_as_json():
    assert flatten({"a": {"b": 1, "c": []}, "d": [1, 2]}) == {"a.b": 1, "a.c": "[]",
                                                              "d": "[1, 2]"}
