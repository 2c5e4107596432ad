"""Run the test CAS server: migrate its SQLite database, register the services, serve on a free loopback
port and print that port on the first line of stdout. Usage: python -m tests.identity.cas_main"""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.identity.cas_settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    from cas_server.models import ReplaceAttributName, ServicePattern

    hall = ServicePattern.objects.create(pos=1, name="hall", single_log_out=True,
                                         pattern=r"^http://127\.0\.0\.1:\d+/sso/cas/callback$")
    ReplaceAttributName.objects.create(name="*", service_pattern=hall)
    other = ServicePattern.objects.create(pos=2, name="other", pattern=r"^http://other\.example\.edu\.cn/.*$")
    ReplaceAttributName.objects.create(name="*", service_pattern=other)

    from django.core.wsgi import get_wsgi_application
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, get_wsgi_application(), threaded=True)
    print(server.server_port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
