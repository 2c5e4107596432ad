"""/api/v1/auth and /api/v1/me."""

from flask.views import MethodView
from flask_login import current_user, login_required, login_user, logout_user
from flask_smorest import Blueprint

from hall.accounts import services
from hall.accounts.schemas import LoginSchema, UserSchema

blp = Blueprint("auth", __name__, url_prefix="/api/v1", description="Sign-in and the current user")


@blp.route("/auth/login", methods=["POST"])
@blp.arguments(LoginSchema)
@blp.response(200, UserSchema)
def login(args):
    """Sign in with a local account; the session cookie carries the sign-in."""
    user = services.authenticate(args["username"], args["password"])
    login_user(user)
    return user


@blp.route("/auth/logout", methods=["POST"])
@blp.response(204)
def logout():
    logout_user()


@blp.route("/me")
class Me(MethodView):
    @login_required
    @blp.response(200, UserSchema)
    def get(self):
        return current_user
