"""`flask --app wsgi hall …` commands: set up, deploy, demo data, serve."""

from __future__ import annotations

import getpass

import click
from flask import Flask
from flask.cli import AppGroup

hall_cli = AppGroup("hall", help="Quality Hall administration.")


@hall_cli.command("create-admin")
@click.argument("username")
@click.option("--name", default="系统管理员")
@click.option("--password", default=None, help="Prompted for when omitted.")
def create_admin(username, name, password):
    """Create an administrator account."""
    from hall.accounts import services as accounts

    accounts.ensure_roles()
    password = password or getpass.getpass("Password: ")
    accounts.create_user(username, name, password, roles=[("admin", None)])
    click.echo(f"administrator {username} created")


@hall_cli.command("deploy")
@click.option("--workflows", default=None, help="Folder of .bpmn files (default: workflows/).")
@click.option("--forms", default=None, help="Folder of form .json files (default: forms/).")
def deploy_cmd(workflows, forms):
    """Deploy every diagram of workflows/ with the forms it references."""
    from flask import current_app

    from hall.processes import services

    results = services.deploy_directory(workflows or current_app.config["WORKFLOWS_DIR"],
                                        forms or current_app.config["FORMS_DIR"])
    for version, created in results:
        state = "deployed" if created else "unchanged"
        click.echo(f"{version.definition.key} v{version.number} {state}")


@hall_cli.command("load-demo")
def load_demo():
    """Load the demo college (organisation, people, shipped flows); safe to run again."""
    from flask import current_app

    from hall.org.demo import DEMO_PASSWORD, load_demo_organisation
    from hall.processes import services

    people = load_demo_organisation()
    services.deploy_directory(current_app.config["WORKFLOWS_DIR"], current_app.config["FORMS_DIR"])
    try:
        from hall.quality import demo as quality_demo
    except ImportError:
        quality_demo = None
    if quality_demo is not None:
        quality_demo.load()
    click.echo(f"Demo logins (password for all: {DEMO_PASSWORD}):")
    for username, name, roles in people:
        click.echo(f"  {username:<10} {name:<6} {roles}")


@hall_cli.command("fire-timers")
def fire_timers():
    """Fire the timers that are due (what the periodic job does)."""
    from hall.processes.services import fire_due_timers

    click.echo(f"{fire_due_timers()} instance(s) advanced")


@hall_cli.command("serve")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
def serve(host, port):
    """Serve the embedded hall with the in-process scheduler (development and small installs)."""
    from flask import current_app

    from hall.jobs import start_scheduler

    app = current_app._get_current_object()
    if not app.config.get("BROKER_URL"):
        start_scheduler(app)
    from werkzeug.serving import run_simple

    # run_simple rather than app.run: the flask CLI refuses app.run() inside a command.
    run_simple(host, port, app, threaded=True, use_reloader=False)


def register(app: Flask) -> None:
    app.cli.add_command(hall_cli)
