"""marshmallow schemas for the fields phones send: shapes, ranges and vocabularies.

Cross-record checks (does the district exist, is it in scope) live in sync/records.py.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, missing, pre_load, validate, validates

from server.identifiers import clean_code, ric_is_valid, uscc_shape_ok
from server.models import (
    ENTERPRISE_FOCUS_TAGS,
    ENTERPRISE_TYPE_TAGS,
    FOCUS_GROUPS,
    PROBLEM_CATEGORIES,
    PROBLEM_STAGES,
    PROBLEM_TAGS,
    VISIT_METHODS,
    VISIT_PLACES,
)

UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_count = validate.Range(min=0, max=100_000)
BIGINT_MAX = 2**63 - 1
# Fields nest two deep (workers_by_group); an envelope adds two more.
MAX_DEPTH = 8
_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")


def _printable(key: Any) -> str:
    return _BAD_CHARS.sub("\ufffd", str(key))[:64]


def unstorable(value: Any, path: str = "") -> tuple[str, str] | None:
    """The first place in a JSON value that the databases cannot store alike, as
    (path, reason): a string or key with a NUL or a lone surrogate (SQLite keeps them,
    PostgreSQL refuses them), nesting deeper than MAX_DEPTH, an integer beyond BIGINT,
    a float that is not finite. None when the whole value is storable.

    It runs for every mutation of every push and replay, so the path is built only for
    the place it reports (a dict's keys first, then its values last to first: the
    order of a depth-first walk with a stack)."""
    found = _first_unstorable(value, 0)
    if found is None:
        return None
    parts, reason = found
    where = path
    for part in reversed(parts):
        if isinstance(part, int):
            where = f"{where}[{part}]"
        else:
            where = f"{where}.{_printable(part)}" if where else _printable(part)
    return where, reason


def _first_unstorable(item: Any, depth: int) -> tuple[list[str | int], str] | None:
    """(path parts, innermost first; reason) of the first unstorable place, or None."""
    if depth > MAX_DEPTH:
        return [], f"nested deeper than {MAX_DEPTH} levels"
    kind = type(item)
    if kind is str:
        bad = _BAD_CHARS.search(item)
        if bad:
            what = "a NUL character" if bad.group() == "\x00" else "a lone surrogate"
            return [], f"contains {what} at position {bad.start()}"
        return None
    if kind is dict:
        for key in item:
            if _BAD_CHARS.search(str(key)):
                return [key], "the key contains a NUL character or a lone surrogate"
        leaf_ok = depth < MAX_DEPTH
        for key in reversed(item):
            inner = item[key]
            if leaf_ok and type(inner) is str and not _BAD_CHARS.search(inner):
                continue  # the common case, without a call
            found = _first_unstorable(inner, depth + 1)
            if found is not None:
                found[0].append(key)
                return found
        return None
    if kind is list:
        for i in range(len(item) - 1, -1, -1):
            found = _first_unstorable(item[i], depth + 1)
            if found is not None:
                found[0].append(i)
                return found
        return None
    if item is None or kind is bool:
        return None
    if isinstance(item, int):
        return ([], "the number is too large") if abs(item) > BIGINT_MAX else None
    if isinstance(item, float) and not math.isfinite(item):
        return [], "the number is not finite"
    if isinstance(item, str):
        return _first_unstorable(str(item), depth)
    if isinstance(item, dict):
        return _first_unstorable(dict(item), depth)
    if isinstance(item, list):
        return _first_unstorable(list(item), depth)
    return None


def outside_window(value: datetime, window: tuple[datetime, datetime] | None) -> str | None:
    """Why a date is implausible for this campaign, or None (see sync.push.DateWindow)."""
    if window is None:
        return None
    low, high = window
    if value < low or value > high:
        return (
            f"{value.date().isoformat()} is outside the plausible dates "
            f"{low.date().isoformat()} to {high.date().isoformat()}"
        )
    return None


def _Int(**kwargs: Any) -> fields.Integer:  # noqa: N802 - reads like a field class
    """An integer that must be one in the JSON: 3.5 and "5" are refused, not coerced."""
    return fields.Integer(strict=True, **kwargs)


def _uuid(value: str) -> None:
    if not UUID_RE.match(value or ""):
        raise ValidationError("not a UUID")


class _Fields(Schema):
    """Common behaviour: strip strings, turn "" into None for optional fields."""

    class Meta:
        unknown = "raise"

    @pre_load
    def _strip(self, data, **kwargs):  # noqa: ANN001, ANN202
        if not isinstance(data, dict):
            return data
        out = {}
        for key, value in data.items():
            if isinstance(value, str):
                value = value.strip()
            out[key] = value
        return out


class EnterpriseFields(_Fields):
    """What a phone may set on an enterprise."""

    name = fields.String(required=True, validate=validate.Length(min=2, max=200))
    uscc = fields.String(allow_none=True)
    district_code = fields.String(required=True, validate=validate.Length(min=1, max=12))
    address = fields.String(allow_none=True, validate=validate.Length(max=300))
    type_tags = fields.List(fields.String(validate=validate.OneOf(ENTERPRISE_TYPE_TAGS)))
    focus_tags = fields.List(fields.String(validate=validate.OneOf(ENTERPRISE_FOCUS_TAGS)))
    head_count = _Int(allow_none=True, validate=validate.Range(min=0, max=2_000_000))
    has_union = fields.Boolean(allow_none=True)

    @validates("uscc")
    def _uscc(self, value, **kwargs):  # noqa: ANN001, ANN202
        if value and not uscc_shape_ok(clean_code(value)):
            raise ValidationError("must be 18 characters of 0-9 and A-Y without I, O, S, V, Z")


class VisitFields(_Fields):
    """What a phone may set on a visit."""

    method = fields.String(required=True, validate=validate.OneOf(VISIT_METHODS))
    visited_at = fields.AwareDateTime(required=True)
    district_code = fields.String(required=True, validate=validate.Length(min=1, max=12))
    work_group_code = fields.String(allow_none=True)
    enterprise_id = fields.String(allow_none=True, validate=_uuid)
    place = fields.String(allow_none=True, validate=validate.OneOf(VISIT_PLACES))
    participants = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)), validate=validate.Length(max=50)
    )
    # Usernames added to the participants, never removing anyone: a cadre joining a
    # visit another cadre recorded (docs/sync-protocol.md, "Joining a visit").
    participants_add = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)),
        validate=validate.Length(min=1, max=50),
    )
    # Write-only: visits this cadre said were another meeting when the phone warned of
    # them (docs/sync-protocol.md, "Joining a visit"): never merged with this one.
    separate_from = fields.List(
        fields.String(validate=validate.Length(min=1, max=36)), validate=validate.Length(max=20)
    )
    workers_met = _Int(validate=_count)
    workers_by_group = fields.Dict(
        keys=fields.String(validate=validate.OneOf(FOCUS_GROUPS)), values=_Int(validate=_count)
    )
    materials = _Int(validate=_count)
    consultations = _Int(validate=_count)
    notes = fields.String(allow_none=True, validate=validate.Length(max=5000))
    lat = fields.Float(allow_none=True, validate=validate.Range(min=-90, max=90))
    lng = fields.Float(allow_none=True, validate=validate.Range(min=-180, max=180))


class ProblemFields(_Fields):
    """What a phone may set on a problem."""

    visit_id = fields.String(required=True, validate=_uuid)
    category = fields.String(required=True, validate=validate.OneOf(PROBLEM_CATEGORIES))
    tag = fields.String(allow_none=True, validate=validate.OneOf(PROBLEM_TAGS))
    description = fields.String(required=True, validate=validate.Length(min=1, max=5000))
    stage = fields.String(validate=validate.OneOf(PROBLEM_STAGES))
    stage_note = fields.String(allow_none=True, validate=validate.Length(max=2000))
    resolution = fields.String(allow_none=True, validate=validate.Length(max=5000))


# An ID number shown masked: stars, then the last four characters.
MASKED_ID_RE = re.compile(r"^\*{2,17}[0-9Xx]{4}$")


class HomeVisitFields(_Fields):
    """What a phone may set on a home visit; `id_number` is write-only."""

    visit_id = fields.String(allow_none=True, validate=_uuid)
    district_code = fields.String(required=True, validate=validate.Length(min=1, max=12))
    visited_at = fields.AwareDateTime(required=True)
    worker_name = fields.String(required=True, validate=validate.Length(min=1, max=40))
    phone = fields.String(allow_none=True, validate=validate.Length(max=20))
    id_number = fields.String(allow_none=True)
    hardship = fields.String(allow_none=True, validate=validate.Length(max=200))
    amount_cents = _Int(validate=validate.Range(min=0, max=10_000_000))
    notes = fields.String(allow_none=True, validate=validate.Length(max=2000))

    @validates("id_number")
    def _id_number(self, value, **kwargs):  # noqa: ANN001, ANN202
        # The masked form a city staff phone pulls (**************1234) is let through:
        # sync/records.py keeps the stored number when it is sent back unchanged.
        if value and not ric_is_valid(value) and not MASKED_ID_RE.match(value):
            raise ValidationError("not a valid resident ID number (checksum or birth date)")


FIELD_SCHEMAS: dict[str, Schema] = {
    "enterprise": EnterpriseFields(),
    "visit": VisitFields(),
    "problem": ProblemFields(),
    "home_visit": HomeVisitFields(),
}
PARTIAL_SCHEMAS: dict[str, Schema] = {
    name: type(schema)(partial=True) for name, schema in FIELD_SCHEMAS.items()
}


class FastLoader:
    """`schema.load` for fields a phone sends as expected, without the schema's
    machinery (a push validates every record of every batch; the schema's own bookkeeping
    cost as much as the fields' checks). Each field is still deserialised and validated
    by its own marshmallow field; anything this cannot decide exactly as `schema.load`
    would (an unknown or missing field, a value a field refuses, a field with an
    @validates method) goes to `schema.load`, which gives the answer and the error
    message. tests/sync/test_fast_loader.py checks the two agree on generated input."""

    def __init__(self, schema: Schema):
        self.schema = schema
        self.by_key = {(f.data_key or name): (name, f) for name, f in schema.load_fields.items()}
        partial = schema.partial
        self.required = (
            () if partial else tuple(k for k, (_, f) in self.by_key.items() if f.required)
        )
        hooks: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
        for attr in dir(type(schema)):
            meta = getattr(getattr(type(schema), attr, None), "__marshmallow_hook__", None)
            # marshmallow's decorators: {hook kind: [(pass_many, options)]}
            for kind, uses in (meta or {}).items():
                for use in uses:
                    opts = use[-1] if isinstance(use, tuple) and isinstance(use[-1], dict) else {}
                    hooks.setdefault(kind, []).append((attr, tuple(opts.get("field_names", ()))))
        self.hooked = {n for _, names in hooks.get("validates", ()) for n in names}
        known = {"validates"} | ({"pre_load"} if isinstance(schema, _Fields) else set())
        self.usable = (
            partial in (True, False, None)
            and set(hooks) <= known
            and [a for a, _ in hooks.get("pre_load", ())] in ([], ["_strip"])
            and all(f.load_default is missing for _, f in self.by_key.values())
        )

    def load(self, data: Any) -> dict[str, Any]:
        """What schema.load(data) returns; raises its ValidationError."""
        fast = self.try_load(data) if self.usable else None
        return fast if fast is not None else self.schema.load(data)

    def try_load(self, data: Any) -> dict[str, Any] | None:
        """The loaded fields, or None when schema.load must decide."""
        if type(data) is not dict:
            return None
        by_key = self.by_key
        for key in self.required:
            if key not in data:
                return None
        out: dict[str, Any] = {}
        for key, value in data.items():
            entry = by_key.get(key)
            if entry is None or entry[0] in self.hooked:
                return None
            name, field = entry
            if type(value) is str:
                value = value.strip()  # _Fields._strip
            try:
                out[field.attribute or name] = field.deserialize(value, key, data)
            except ValidationError:
                return None
        return out


FAST_LOADERS: dict[str, FastLoader] = {n: FastLoader(s) for n, s in FIELD_SCHEMAS.items()}
PARTIAL_FAST_LOADERS: dict[str, FastLoader] = {n: FastLoader(s) for n, s in PARTIAL_SCHEMAS.items()}


class MutationSchema(Schema):
    """One entry of a push batch."""

    class Meta:
        unknown = "raise"

    mid = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=BIGINT_MAX))
    op = fields.String(required=True, validate=validate.OneOf(("create", "update", "delete")))
    entity = fields.String(required=True, validate=validate.OneOf(tuple(FIELD_SCHEMAS)))
    id = fields.String(required=True, validate=_uuid)
    fields_ = fields.Dict(data_key="fields", load_default=dict)
    base_version = fields.Integer(
        allow_none=True,
        strict=True,
        load_default=None,
        validate=validate.Range(min=0, max=BIGINT_MAX),
    )
    # The entry this mutation belongs to: an entry's mutations are judged together.
    entry = fields.String(allow_none=True, load_default=None, validate=_uuid)


class PushSchema(Schema):
    """The body of POST /api/sync/push."""

    class Meta:
        unknown = "raise"

    protocol = fields.Integer(required=True, strict=True)
    device_id = fields.String(required=True, validate=_uuid)
    mutations = fields.List(fields.Dict(), required=True)
