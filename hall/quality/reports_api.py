"""/api/v1 endpoints of the quality domain (reports)."""

from flask_smorest import Blueprint

blp = Blueprint("reports", __name__, url_prefix="/api/v1", description="Quality: reports")
