"""/api/v1/auth and /api/v1/me."""

from flask.views import MethodView
from flask_login import current_user, login_required
from marshmallow import Schema, fields

from hall import security
from hall.accounts.schemas import LoginSchema, UserSchema
from hall.extensions import Blueprint

blp = Blueprint("auth", __name__, url_prefix="/api/v1", description="Sign-in and the current user")


class SignedInSchema(UserSchema):
    # Send it back as the X-CSRF-Token header on every POST, PUT and DELETE of this session.
    csrf_token = fields.Function(lambda _user: security.csrf_token())


class CsrfSchema(Schema):
    csrf_token = fields.String()


@blp.route("/auth/login", methods=["POST"])
@blp.arguments(LoginSchema)
@blp.response(200, SignedInSchema)
def login(args):
    """Sign in with a local account on a new session; repeated failures lock the name for a while (429)."""
    user = security.sign_in_with_password(args["username"], args["password"])
    security.start_session(user, method="password")
    return user


@blp.route("/auth/logout", methods=["POST"])
@blp.response(204)
def logout():
    security.end_session()


@blp.route("/auth/csrf")
@blp.response(200, CsrfSchema)
def csrf():
    """The session's CSRF token, for the X-CSRF-Token header of state-changing requests."""
    return {"csrf_token": security.csrf_token()}


@blp.route("/me")
class Me(MethodView):
    @login_required
    @blp.response(200, UserSchema)
    def get(self):
        return current_user
