"""Pages. Views stay thin: they call the same services as the API."""

from __future__ import annotations

from urllib.parse import urlparse

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from hall.accounts import services as accounts
from hall.errors import HallError
from hall.tasks import services as tasks

bp = Blueprint("web", __name__)


def render_error(code: int, message: str, errors=None):
    return render_template("error.html", code=code, message=message, errors=errors), code


def _safe_next(target: str | None) -> str:
    """Only same-site paths are followed after sign-in."""
    if not target:
        return url_for("web.home")
    parts = urlparse(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("web.home")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    if request.method == "POST":
        try:
            user = accounts.authenticate(request.form.get("username", ""), request.form.get("password", ""))
        except HallError as err:
            error = err.message
        else:
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", error=error), 401 if error else 200


@bp.route("/logout", methods=["POST"])
def logout():
    logout_user()
    return redirect(url_for("web.login"))


@bp.route("/")
@login_required
def home():
    items, total = tasks.inbox(current_user, "open", page_size=5)
    return render_template("home.html", tasks=items, open_count=total,
                           done_count=tasks.inbox(current_user, "completed", page_size=1)[1])
