"""Marshmallow schemas of accounts."""

from marshmallow import Schema

from hall import fields


class LoginSchema(Schema):
    username = fields.String(required=True)
    password = fields.String(required=True, load_only=True)


class MembershipSchema(Schema):
    id = fields.Integer()
    role_code = fields.String(data_key="role")
    org_unit_id = fields.Integer(allow_none=True)


class UserSchema(Schema):
    id = fields.Integer()
    username = fields.String()
    name = fields.String()
    email = fields.String(allow_none=True)
    org_unit_id = fields.Integer(allow_none=True)
    roles = fields.Method("_roles")
    memberships = fields.List(fields.Nested(MembershipSchema))

    def _roles(self, user):
        return sorted(user.role_codes)
