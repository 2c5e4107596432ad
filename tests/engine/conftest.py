"""Fixtures of the engine tests: an administrator's API client on the demo organisation.

The shipped workflows are not deployed here: these tests deploy their own diagrams, and must not
depend on which operators other packages register."""

import pytest


@pytest.fixture
def people(app, ctx):
    """The demo organisation and its people (password "hall2026")."""
    from hall.org.demo import load_demo_organisation

    load_demo_organisation()


@pytest.fixture
def admin(api, people):
    """The API client signed in as the demo administrator."""
    return api.login("admin")
