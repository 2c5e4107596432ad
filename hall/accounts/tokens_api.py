"""/api/v1/tokens: API tokens of integrations, managed by administrators."""

from __future__ import annotations

from flask_login import current_user, login_required
from marshmallow import Schema

from hall import fields
from hall.accounts import tokens
from hall.audit import services as audit
from hall.extensions import Blueprint

blp = Blueprint("tokens", __name__, url_prefix="/api/v1", description="API tokens for integrations (administrators)")


class TokenInSchema(Schema):
    name = fields.String(required=True)
    scopes = fields.List(fields.String(), required=True)
    expires_in_days = fields.Integer(load_default=90)


class TokenSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    prefix = fields.String()
    scopes = fields.List(fields.String())
    state = fields.String()
    created_by = fields.Function(lambda t: t.created_by.username)
    created_at = fields.DateTime()
    expires_at = fields.DateTime()
    revoked_at = fields.DateTime(allow_none=True)
    last_used_at = fields.DateTime(allow_none=True)
    last_used_ip = fields.String(allow_none=True)


class NewTokenSchema(TokenSchema):
    # The secret, in this one response only.
    token = fields.String()


class TokenListSchema(Schema):
    items = fields.List(fields.Nested(TokenSchema))
    total = fields.Integer()


@blp.route("/tokens", methods=["POST"])
@login_required
@blp.arguments(TokenInSchema)
@blp.response(201, NewTokenSchema)
def create_token(args):
    """Create a token; the response carries its secret, which is shown this once and never again."""
    token, secret = tokens.create_token(current_user, args["name"], args["scopes"], args["expires_in_days"])
    audit.record("token_created", current_user.username, token_id=token.id, prefix=token.prefix,
                 name=token.name, scopes=token.scopes)
    token.token = secret  # a plain attribute for the response, never a column
    return token


@blp.route("/tokens")
@login_required
@blp.response(200, TokenListSchema)
def list_tokens():
    """Every token with its state and last use (never its secret)."""
    items = tokens.list_tokens(current_user)
    return {"items": items, "total": len(items)}


@blp.route("/tokens/<int:token_id>", methods=["DELETE"])
@login_required
@blp.response(200, TokenSchema)
def revoke_token(token_id):
    """Revoke a token at once; later requests with it answer 401."""
    token = tokens.revoke_token(current_user, token_id)
    audit.record("token_revoked", current_user.username, token_id=token.id, prefix=token.prefix, name=token.name)
    return token
