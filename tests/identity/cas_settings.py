"""Django settings of the test CAS server (django-cas-server) that tests/identity/cas_main.py runs."""

import os

SECRET_KEY = "hall-test-cas-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "cas_server",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.locale.LocaleMiddleware",
]
ROOT_URLCONF = "tests.identity.cas_urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3",
                         "NAME": os.path.join(os.environ["HALL_TEST_CAS_DIR"], "cas.sqlite3")}}
STATIC_URL = "/static/"
USE_TZ = True
LANGUAGE_CODE = "zh-hans"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

# One test person, 张三 of department xxgc, with Chinese attribute values.
CAS_AUTH_CLASS = "cas_server.auth.TestAuthUser"
CAS_TEST_USER = "zhangsan"
CAS_TEST_PASSWORD = "cas-pass-2026"
CAS_TEST_ATTRIBUTES = {
    "employeeNumber": "T9001",
    "displayName": "张三",
    "mail": "zhangsan@college.example.edu.cn",
    "department": "xxgc",
    "groups": ["部门负责人", "teacher", "图书馆读者"],
}
CAS_NEW_VERSION_HTML_WARNING = False
CAS_NEW_VERSION_EMAIL_WARNING = False
CAS_SHOW_POWERED = False
CAS_SLO_TIMEOUT = 10
LOGGING = {"version": 1, "disable_existing_loggers": False}
