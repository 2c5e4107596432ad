"""Extension objects, created unbound and initialised by create_app."""

from __future__ import annotations

import flask_smorest
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData

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


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint for the hall's API modules. An argument schema given as a class is made an
    instance once, here: given the class, webargs builds a new instance for every request it parses (a
    marshmallow schema's fields are copied and bound each time, ~0.05 ms). Schemas keep no state between
    loads, so one instance serves every request and thread."""

    def arguments(self, schema, *args, **kwargs):
        if isinstance(schema, type):
            schema = schema()
        return super().arguments(schema, *args, **kwargs)
