"""Extension objects, created unbound and initialised by create_app."""

from __future__ import annotations

import flask_smorest
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from webargs import core as webargs_core
from webargs.flaskparser import FlaskParser, is_json_request

from hall import jsontext

# Named constraints keep Alembic migrations portable between SQLite and PostgreSQL.
naming = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
db = SQLAlchemy(metadata=MetaData(naming_convention=naming))
migrate = Migrate()
login_manager = LoginManager()
api = Api()


class _Parser(FlaskParser):
    """webargs' parser for the hall's API: JSON bodies are read as Flask reads them (hall/jsontext.py:
    faster, and NaN or Infinity is a 400 like any other body that is not JSON), and a body that is not JSON
    is answered in words a person reads."""

    def _raw_load_json(self, req):
        if not is_json_request(req):
            return webargs_core.missing
        return jsontext.loads_request(req.get_data(cache=True))

    def _handle_invalid_json_error(self, error, req, *args, **kwargs):
        from hall.errors import BadRequest

        raise BadRequest("请求体不是有效的 JSON（NaN、Infinity 不是 JSON 的值；"
                         f"嵌套不能超过 {jsontext.MAX_REQUEST_DEPTH} 层；文字中不能有空字符 \\u0000）")


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint for the hall's API modules. An argument schema given as a class is made an
    instance once, here: given the class, webargs builds a new instance for every request it parses (a
    marshmallow schema's fields are copied and bound each time, ~0.05 ms). Schemas keep no state between
    loads, so one instance serves every request and thread."""

    ARGUMENTS_PARSER = _Parser()

    def arguments(self, schema, *args, **kwargs):
        if isinstance(schema, type):
            schema = schema()
        return super().arguments(schema, *args, **kwargs)
