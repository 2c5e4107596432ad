"""/api/v1 endpoints of the quality domain (cycles)."""

from flask_smorest import Blueprint

blp = Blueprint("cycles", __name__, url_prefix="/api/v1", description="Quality: cycles")
