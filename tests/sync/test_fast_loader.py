"""sync.schemas.FastLoader against marshmallow's schema.load, on generated field maps:
whenever the fast path answers, it answers what schema.load returns; whenever schema.load
refuses, the fast path steps aside (so the error and its message are marshmallow's)."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from sync.schemas import FAST_LOADERS, FIELD_SCHEMAS, PARTIAL_FAST_LOADERS, PARTIAL_SCHEMAS

_ENUMS = [
    "symposium",
    "interview",
    "party",
    "wages",
    "housing",
    "urgent",
    "enterprise",
    "resolved",
    "migrant",
    "needy",
    "workshop",
    "private",
]
_strings = st.one_of(
    st.sampled_from(_ENUMS),
    st.sampled_from(["", " ", "  symposium ", "510104", " 510104", "x" * 13, "中" * 201]),
    st.sampled_from(["2026-03-01T10:00:00+08:00", "2026-03-01T10:00:00", "2026-03-01", "bad"]),
    st.sampled_from(["2026-03-01T02:00:00Z", " 2026-03-01T10:00:00+08:00 ", "2026-13-01T00:00Z"]),
    st.builds(lambda: str(uuid.uuid4())),
    st.text(max_size=6),
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=200_005),
    st.floats(allow_nan=True, allow_infinity=True),
    _strings,
)
_values = st.one_of(
    _scalars,
    st.lists(_scalars, max_size=3),
    st.dictionaries(st.sampled_from(_ENUMS + ["x"]), _scalars, max_size=3),
)


def _field_maps(entity: str):
    names = list(FIELD_SCHEMAS[entity].load_fields)
    return st.dictionaries(st.sampled_from(names + ["unknown"]), _values, max_size=len(names))


def _valid_base(entity: str) -> dict:
    return {
        "visit": {
            "method": "symposium",
            "visited_at": "2026-03-01T10:00:00+08:00",
            "district_code": "510104",
        },
        "problem": {
            "visit_id": str(uuid.uuid4()),
            "category": "wages",
            "description": "职工反映",
        },
        "enterprise": {"name": "华兴机械", "district_code": "510104"},
        "home_visit": {
            "district_code": "510104",
            "visited_at": "2026-03-01T10:00:00+08:00",
            "worker_name": "赵春花",
        },
    }[entity]


def _agree(fast, schema, data) -> None:
    try:
        expected = schema.load(data)
    except ValidationError:
        expected = None
    got = fast.try_load(data)
    if expected is None:
        assert got is None, (data, got)
        with pytest.raises(ValidationError):
            fast.load(data)
    else:
        assert got is None or got == expected, (data, got, expected)
        assert fast.load(data) == expected


@pytest.mark.parametrize("entity", sorted(FIELD_SCHEMAS))
@pytest.mark.parametrize("partial", [False, True])
def test_agrees_with_schema_load(entity, partial):
    fast = (PARTIAL_FAST_LOADERS if partial else FAST_LOADERS)[entity]
    schema = (PARTIAL_SCHEMAS if partial else FIELD_SCHEMAS)[entity]
    assert fast.usable

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
    @given(_field_maps(entity), st.booleans())
    def check(extra, on_valid_base):
        data = {**_valid_base(entity), **extra} if on_valid_base else extra
        _agree(fast, schema, data)

    check()


def test_the_common_entries_take_the_fast_path():
    """A push's usual records are loaded without schema.load (else this saves nothing)."""
    visit = {
        **_valid_base("visit"),
        "workers_met": 12,
        "workers_by_group": {"migrant": 3},
        "materials": 2,
        "notes": " 基准 ",
        "participants": ["cadre1"],
    }
    loaded = FAST_LOADERS["visit"].try_load(visit)
    assert loaded == FIELD_SCHEMAS["visit"].load(visit)
    assert loaded["notes"] == "基准"
    assert FAST_LOADERS["problem"].try_load(_valid_base("problem")) is not None
    assert PARTIAL_FAST_LOADERS["problem"].try_load({"stage": "government"}) == {
        "stage": "government"
    }
    # a field with an @validates method: schema.load decides
    assert FAST_LOADERS["enterprise"].try_load({**_valid_base("enterprise"), "uscc": "x"}) is None
