"""/api/v1/users: accounts managed by administrators (create, edit, reset a password)."""

from __future__ import annotations

from flask_login import current_user, login_required
from marshmallow import Schema, validate

from hall import fields
from hall.accounts import services
from hall.accounts.schemas import UserSchema
from hall.extensions import Blueprint
from hall.processes.schemas import PageArgs

blp = Blueprint("users", __name__, url_prefix="/api/v1", description="User accounts (administrators)")


class AdminUserSchema(UserSchema):
    phone = fields.String(allow_none=True)
    active = fields.Boolean()


class UserQuerySchema(PageArgs):
    q = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))


class UserListSchema(Schema):
    items = fields.List(fields.Nested(AdminUserSchema))
    total = fields.Integer()
    page = fields.Integer()
    page_size = fields.Integer()


class RoleGrantSchema(Schema):
    role = fields.String(required=True)
    org_unit_id = fields.Integer(load_default=None, allow_none=True)


class UserInSchema(Schema):
    username = fields.String(required=True)
    name = fields.String(required=True)
    password = fields.String(required=True, load_only=True)
    email = fields.String(load_default=None, allow_none=True)
    phone = fields.String(load_default=None, allow_none=True)
    org_unit_id = fields.Integer(load_default=None, allow_none=True)
    roles = fields.List(fields.Nested(RoleGrantSchema), load_default=list)


class UserPatchSchema(Schema):
    name = fields.String()
    email = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    active = fields.Boolean()


class PasswordSchema(Schema):
    password = fields.String(required=True, load_only=True)


@blp.route("/users")
@login_required
@blp.arguments(UserQuerySchema, location="query")
@blp.response(200, UserListSchema)
def list_users(args):
    items, total = services.list_users(args["page"], args["q"], args["page_size"])
    return {"items": items, "total": total, "page": args["page"], "page_size": args["page_size"]}


@blp.route("/users", methods=["POST"])
@login_required
@blp.arguments(UserInSchema)
@blp.response(201, AdminUserSchema)
def create_user(args):
    """Create an account; username, email, phone and password are validated (422 naming the fields)."""
    return services.register_user(current_user, args["username"], args["name"], args["password"], args["email"],
                                  args["phone"], org_unit_id=args["org_unit_id"],
                                  roles=[(r["role"], r["org_unit_id"]) for r in args["roles"]])


@blp.route("/users/<int:user_id>", methods=["PATCH"])
@login_required
@blp.arguments(UserPatchSchema)
@blp.response(200, AdminUserSchema)
def update_user(args, user_id):
    """Change the fields given of name, email, phone and active."""
    return services.update_user(current_user, user_id, fields=tuple(args), **args)


@blp.route("/users/<int:user_id>/password", methods=["POST"])
@login_required
@blp.arguments(PasswordSchema)
@blp.response(200, AdminUserSchema)
def reset_password(args, user_id):
    """Set a new password for the account (at least 8 characters)."""
    return services.reset_password(current_user, user_id, args["password"])


@blp.route("/users/<int:user_id>/memberships", methods=["POST"])
@login_required
@blp.arguments(RoleGrantSchema)
@blp.response(201, AdminUserSchema)
def add_membership(args, user_id):
    """Give the person a role, in an org unit or college-wide (org_unit_id null)."""
    membership = services.add_membership(current_user, user_id, args["role"], args["org_unit_id"])
    return membership.user


@blp.route("/users/<int:user_id>/memberships/<int:membership_id>", methods=["DELETE"])
@login_required
@blp.response(200, AdminUserSchema)
def remove_membership(user_id, membership_id):
    """Take a role away (an administrator cannot remove their own admin role)."""
    return services.remove_membership(current_user, user_id, membership_id)
