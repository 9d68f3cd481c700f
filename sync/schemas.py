"""marshmallow schemas for the fields phones send: shapes, ranges and vocabularies.

Cross-record checks (does the district exist, is it in scope) live in sync/records.py.
"""

from __future__ import annotations

import re

from marshmallow import Schema, ValidationError, fields, pre_load, validate, validates

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
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_count = validate.Range(min=0, max=100_000)


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
    head_count = fields.Integer(allow_none=True, validate=validate.Range(min=0, max=2_000_000))
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
    participants = fields.List(fields.String(validate=validate.Length(min=1, max=64)),
                               validate=validate.Length(max=50))
    workers_met = fields.Integer(validate=_count)
    workers_by_group = fields.Dict(keys=fields.String(validate=validate.OneOf(FOCUS_GROUPS)),
                                   values=fields.Integer(validate=_count))
    materials = fields.Integer(validate=_count)
    consultations = fields.Integer(validate=_count)
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


class HomeVisitFields(_Fields):
    """What a phone may set on a home visit; `id_number` is write-only."""

    visit_id = fields.String(allow_none=True, validate=_uuid)
    district_code = fields.String(required=True, validate=validate.Length(min=1, max=12))
    visited_at = fields.AwareDateTime(required=True)
    worker_name = fields.String(required=True, validate=validate.Length(min=1, max=40))
    phone = fields.String(allow_none=True, validate=validate.Length(max=20))
    id_number = fields.String(allow_none=True)
    hardship = fields.String(allow_none=True, validate=validate.Length(max=200))
    amount_cents = fields.Integer(validate=validate.Range(min=0, max=10_000_000))
    notes = fields.String(allow_none=True, validate=validate.Length(max=2000))

    @validates("id_number")
    def _id_number(self, value, **kwargs):  # noqa: ANN001, ANN202
        if value and not ric_is_valid(value):
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


class MutationSchema(Schema):
    """One entry of a push batch."""

    class Meta:
        unknown = "raise"

    mid = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    op = fields.String(required=True, validate=validate.OneOf(("create", "update", "delete")))
    entity = fields.String(required=True, validate=validate.OneOf(tuple(FIELD_SCHEMAS)))
    id = fields.String(required=True, validate=_uuid)
    fields_ = fields.Dict(data_key="fields", load_default=dict)
    base_version = fields.Integer(allow_none=True, strict=True, load_default=None)


class PushSchema(Schema):
    """The body of POST /api/sync/push."""

    class Meta:
        unknown = "raise"

    protocol = fields.Integer(required=True, strict=True)
    device_id = fields.String(required=True, validate=_uuid)
    mutations = fields.List(fields.Dict(), required=True)
