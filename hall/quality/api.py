"""/api/v1 endpoints of the quality domain (quality)."""

from flask_smorest import Blueprint

blp = Blueprint("quality", __name__, url_prefix="/api/v1", description="Quality: quality")
