"""Settings, read from environment variables only; every variable is documented in the README.

The defaults run the platform embedded on one machine: SQLite and kombu's filesystem broker,
both under ``var/``. ``DATABASE_URL`` and ``CELERY_BROKER_URL`` move it to PostgreSQL and
Redis or RabbitMQ.
"""

import json
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


VAR_DIR = Path(os.environ.get("ANNOTATOR_VAR_DIR", BASE_DIR / "var")).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    # A key of this machine's own, kept under var/, so sessions survive restarts without
    # anyone having to invent one for a local run. Production sets DJANGO_SECRET_KEY.
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        import secrets

        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    SECRET_KEY = key_file.read_text().strip()

ALLOWED_HOSTS = [
    h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h.strip()
]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

# HTTPS, for a deployment behind a TLS proxy (the README's *Production* section sets them all;
# `manage.py check --deploy` is then clean). Off by default so that a local http:// run works.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("DJANGO_CSRF_COOKIE_SECURE", False)
SESSION_COOKIE_AGE = env_int("DJANGO_SESSION_AGE", 14 * 24 * 3600)
# "HEADER,value": the header the proxy sets on requests that came in over HTTPS, as Django names
# it in request.META, e.g. "HTTP_X_FORWARDED_PROTO,https". Only behind a proxy that sets it itself.
_proxy_ssl_header = os.environ.get("DJANGO_SECURE_PROXY_SSL_HEADER", "").strip()
SECURE_PROXY_SSL_HEADER: tuple[str, str] | None = None
if _proxy_ssl_header:
    _header, _, _value = (part.strip() for part in _proxy_ssl_header.partition(","))
    if not _header.startswith("HTTP_") or not _value:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            f"DJANGO_SECURE_PROXY_SSL_HEADER must be 'HTTP_HEADER_NAME,value', e.g. "
            f"'HTTP_X_FORWARDED_PROTO,https' (got {_proxy_ssl_header!r})"
        )
    SECURE_PROXY_SSL_HEADER = (_header, _value)
# /healthz answers over plain HTTP too: load balancers and container checks call it directly.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy of every page (django-csp): scripts and styles only from the project's own
# static files; no inline script or style, no eval, no nonces or hashes. Data for scripts goes in
# <script type="application/json"> (json_script), which is never executed. A response that sets its
# own header keeps it (an image's file: "default-src 'none'; sandbox").
_SELF = "'self'"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [_SELF],
        "script-src": [_SELF],
        "style-src": [_SELF],
        "img-src": [_SELF, "data:", "blob:"],
        "connect-src": [_SELF],
        "font-src": [_SELF],
        "object-src": ["'none'"],
        "base-uri": [_SELF],
        "form-action": [_SELF],
        "frame-ancestors": ["'none'"],
    }
}
# Seconds between two refreshes of a page that follows work in progress (job, release, import).
PAGE_POLL_SECONDS = env_float("ANNOTATOR_PAGE_POLL_SECONDS", 1.0)
if not 0.2 <= PAGE_POLL_SECONDS <= 3600:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"ANNOTATOR_PAGE_POLL_SECONDS must be between 0.2 and 3600 (got {PAGE_POLL_SECONDS:g})")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "axes",
    "csp",
    "django_htmx",
    "annotator.apps.AnnotatorConfig",
    "feedback",
    "exports",
    "quality",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # A strict Content-Security-Policy on every response, also those the middleware below answers
    # itself (413, login redirects, lockout): CONTENT_SECURITY_POLICY above.
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Before anything reads a body: needs the user (above); the CSRF check reads forms later.
    "annotator.middleware.RequestBodyLimitMiddleware",
    # An htmx refresh that gets a redirect (to the login page) moves the whole page (feedback/polling.py).
    "feedback.polling.HtmxRedirectMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    # A session signed in with a one-time password reaches only the password page (annotator/passwords.py).
    "annotator.passwords.OneTimePasswordMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # The services' refusals on pages: a message and back to the form, or a 4xx page (feedback/errors.py).
    "feedback.middleware.ServiceErrorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # request.htmx: the polled pages answer htmx's requests with their progress partial alone.
    "django_htmx.middleware.HtmxMiddleware",
    # Turns a locked-out login into the lockout page (annotator.lockout.lockout_response).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "annotator.urls"
WSGI_APPLICATION = "annotator.wsgi.application"
ASGI_APPLICATION = "annotator.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'annotator.sqlite3'}")
# Connections are kept (and checked before reuse): a worker that opened one per task would spend
# more on connecting than on its work, and PostgreSQL would start a process for each.
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 300), conn_health_checks=True
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets the web server and the worker read while the other writes; IMMEDIATE
        # transactions take the write lock up front instead of failing half-way.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # A file, not memory, so that a worker process started by a test sees the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# The lockout backend first: it refuses a locked-out user name and address before any password check.
AUTHENTICATION_BACKENDS = [
    "annotator.lockout.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Failed logins (the login page, the admin's and the token endpoint) are counted per user name and
# client address; that many lock the pair out for the cool-off, a successful login starts over.
AXES_FAILURE_LIMIT = env_int("ANNOTATOR_LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_float("ANNOTATOR_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "annotator.lockout.lockout_response"
AXES_VERBOSE = False
# Proxies in front of the web server that append to X-Forwarded-For: the client address for the
# lockout and the throttles is then taken from it (0: the connection's own address).
PROXY_COUNT = env_int("ANNOTATOR_PROXY_COUNT", 0)
AXES_CLIENT_IP_CALLABLE = "annotator.lockout.client_address"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "feedback:project-list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # collectstatic fills it; whitenoise serves from it
MEDIA_ROOT = Path(os.environ.get("ANNOTATOR_MEDIA_ROOT", VAR_DIR / "media")).resolve()
MEDIA_URL = "media/"
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# Request bodies, refused with 413 before they are read (annotator.middleware): any body but a
# multipart upload from a signed-in user, and any body at all from someone not signed in.
JSON_MAX_BYTES = env_int("ANNOTATOR_JSON_MAX_BYTES", 4 * 1024 * 1024)
ANON_BODY_MAX_BYTES = env_int("ANNOTATOR_ANON_BODY_MAX_BYTES", 64 * 1024)
UPLOAD_DIR = Path(os.environ.get("ANNOTATOR_UPLOAD_DIR", VAR_DIR / "uploads")).resolve()
# Dataset releases: one folder per release, served only through the release pages and API.
RELEASES_ROOT = Path(os.environ.get("ANNOTATOR_RELEASES_ROOT", VAR_DIR / "releases")).resolve()

# Files go through Django's storage API (feedback/storage.py), one store per kind: images and
# thumbnails ("default", the media), import uploads ("uploads") and releases ("releases"). Each is
# the local folder above (one machine) or an S3-compatible bucket shared by every web server and
# worker: ANNOTATOR_STORAGE sets the backend of all three, ANNOTATOR_<KIND>_STORAGE one of them;
# ANNOTATOR_S3_* the bucket, endpoint and region of all, ANNOTATOR_<KIND>_S3_* one kind's. The
# credentials come from the environment only (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, or any
# other source boto3 reads): nothing here holds them.
STORAGE_KINDS = {
    "MEDIA": ("default", "MEDIA_ROOT"),
    "UPLOADS": ("uploads", "UPLOAD_DIR"),
    "RELEASES": ("releases", "RELEASES_ROOT"),
}
# Downloads of S3-stored files (releases, images): "signed" redirects to a URL signed for this many
# seconds; "stream" sends the bytes through the web server (a store only the servers can reach).
STORAGE_DOWNLOADS = os.environ.get("ANNOTATOR_STORAGE_DOWNLOADS", "signed").strip().lower()
STORAGE_SIGNED_URL_SECONDS = env_int("ANNOTATOR_STORAGE_SIGNED_URL_SECONDS", 300)
# Bytes of one part of a multipart upload (S3 wants 5 MiB at least, 10,000 parts at most).
STORAGE_PART_BYTES = env_int("ANNOTATOR_STORAGE_PART_BYTES", 8 * 1024 * 1024)


def storage_settings(kind: str, root_setting: str) -> dict:
    """The ``STORAGES`` entry of one kind of file, from the environment."""
    from django.core.exceptions import ImproperlyConfigured

    backend = os.environ.get(f"ANNOTATOR_{kind}_STORAGE") or os.environ.get("ANNOTATOR_STORAGE") or "local"
    backend = backend.strip().lower()
    if backend == "local":
        return {"BACKEND": "feedback.storage.LocalStorage", "OPTIONS": {"root_setting": root_setting}}
    if backend != "s3":
        raise ImproperlyConfigured(f"ANNOTATOR_{kind}_STORAGE must be 'local' or 's3' (got {backend!r})")

    def value(name: str, default: str = "") -> str:
        return (
            os.environ.get(f"ANNOTATOR_{kind}_S3_{name}") or os.environ.get(f"ANNOTATOR_S3_{name}") or default
        ).strip()

    bucket = value("BUCKET")
    if not bucket:
        raise ImproperlyConfigured(
            f"ANNOTATOR_{kind}_STORAGE is s3: set ANNOTATOR_S3_BUCKET or ANNOTATOR_{kind}_S3_BUCKET"
        )
    prefix = os.environ.get(f"ANNOTATOR_{kind}_S3_PREFIX")
    from botocore.config import Config

    addressing_style = value("ADDRESSING_STYLE") or None
    # Connections enough for a release's part uploads and its images fetched ahead, on one client.
    client_config = Config(s3={"addressing_style": addressing_style}, signature_version="s3v4", max_pool_connections=32)
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "location": (kind.lower() if prefix is None else prefix).strip("/"),
            "endpoint_url": value("ENDPOINT_URL") or None,
            "region_name": value("REGION") or None,
            "addressing_style": addressing_style,
            "signature_version": "s3v4",
            "client_config": client_config,
            "default_acl": None,
            "file_overwrite": True,  # names are chosen by the platform (a hash, a token): never renamed
            "querystring_auth": True,
            "querystring_expire": STORAGE_SIGNED_URL_SECONDS,
        },
    }


if STORAGE_DOWNLOADS not in {"signed", "stream"}:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"ANNOTATOR_STORAGE_DOWNLOADS must be 'signed' or 'stream' (got {STORAGE_DOWNLOADS!r})")
STORAGES = {
    **{alias: storage_settings(kind, root) for kind, (alias, root) in STORAGE_KINDS.items()},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}


def storage_origin(entry: dict) -> str | None:
    """The origin that signed URLs of an S3 store point to (pages must be allowed to load images
    from it), or None for a local store."""
    options = entry.get("OPTIONS", {})
    if "bucket_name" not in options:
        return None
    endpoint = options.get("endpoint_url")
    if not endpoint:
        return "https://*.amazonaws.com"
    from urllib.parse import urlsplit

    parts = urlsplit(endpoint)
    if options.get("addressing_style") == "virtual":
        return f"{parts.scheme}://*.{parts.netloc}"
    return f"{parts.scheme}://{parts.netloc}"


# Images of an S3 media store under signed downloads come from the store: the pages may load them.
_media_origin = storage_origin(STORAGES["default"])
if _media_origin and STORAGE_DOWNLOADS == "signed":
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["img-src"].append(_media_origin)

# Images: Pillow refuses anything whose header claims more pixels than this (a decompression
# bomb guard), and anything it cannot fully decode.
IMAGE_MAX_PIXELS = env_int("ANNOTATOR_IMAGE_MAX_PIXELS", 50_000_000)
# Bytes of one image file (from a folder or a zip entry, read no further than this), and of a
# zip of images as a whole (uncompressed) with its number of entries; an entry that would grow
# more than ZIP_MAX_RATIO times its compressed size is refused unread.
IMAGE_MAX_BYTES = env_int("ANNOTATOR_IMAGE_MAX_BYTES", 50 * 1024 * 1024)
ZIP_MAX_BYTES = env_int("ANNOTATOR_ZIP_MAX_BYTES", 20 * 1024**3)
ZIP_MAX_ENTRIES = env_int("ANNOTATOR_ZIP_MAX_ENTRIES", 500_000)
ZIP_MAX_RATIO = env_int("ANNOTATOR_ZIP_MAX_RATIO", 100)
# An import upload (its file and images zip together): larger bodies get 413 before they are read.
UPLOAD_MAX_BYTES = env_int("ANNOTATOR_UPLOAD_MAX_BYTES", 2 * 1024**3)
IMPORT_CHUNK_SIZE = env_int("ANNOTATOR_IMPORT_CHUNK_SIZE", 1000)
# Images by reference (feedback/references/): where a worker may fetch an image from. Hosts of
# https:// references (comma-separated: "images.example.org", "*.cdn.example.org", "host:8443";
# "http://host:port" also allows plain http to that host, for loopback tests); the S3 buckets of
# s3:// references (read with the store's endpoint, region and credentials unless
# ANNOTATOR_IMAGE_REF_S3_ENDPOINT_URL / _REGION are set); the read-only folder of path references.
# A host resolving to a private, loopback or link-local address is refused unless the address lies
# in ANNOTATOR_IMAGE_REF_PRIVATE_NETWORKS (CIDR, comma-separated).
IMAGE_REF_HOSTS = [h.strip() for h in os.environ.get("ANNOTATOR_IMAGE_REF_HOSTS", "").split(",") if h.strip()]
IMAGE_REF_S3_BUCKETS = [b.strip() for b in os.environ.get("ANNOTATOR_IMAGE_REF_S3_BUCKETS", "").split(",") if b.strip()]
IMAGE_REF_S3_ENDPOINT_URL = os.environ.get("ANNOTATOR_IMAGE_REF_S3_ENDPOINT_URL") or os.environ.get(
    "ANNOTATOR_S3_ENDPOINT_URL", ""
)
IMAGE_REF_S3_REGION = os.environ.get("ANNOTATOR_IMAGE_REF_S3_REGION") or os.environ.get("ANNOTATOR_S3_REGION", "")
IMAGE_REF_ROOT = os.environ.get("ANNOTATOR_IMAGE_REF_ROOT", "")
IMAGE_REF_PRIVATE_NETWORKS = [
    n.strip() for n in os.environ.get("ANNOTATOR_IMAGE_REF_PRIVATE_NETWORKS", "").split(",") if n.strip()
]
# A fetch: seconds to connect and between two reads, seconds for the whole body, attempts on a
# transient failure (timeouts, refused connections, 429 and 5xx answers) and the backoff between
# them (base doubling up to max, with jitter). Files are read no further than IMAGE_MAX_BYTES.
IMAGE_FETCH_CONNECT_TIMEOUT = env_float("ANNOTATOR_IMAGE_FETCH_CONNECT_TIMEOUT", 5.0)
IMAGE_FETCH_READ_TIMEOUT = env_float("ANNOTATOR_IMAGE_FETCH_READ_TIMEOUT", 20.0)
IMAGE_FETCH_TOTAL_TIMEOUT = env_float("ANNOTATOR_IMAGE_FETCH_TOTAL_TIMEOUT", 120.0)
IMAGE_FETCH_MAX_ATTEMPTS = env_int("ANNOTATOR_IMAGE_FETCH_MAX_ATTEMPTS", 4)
IMAGE_FETCH_BACKOFF_BASE = env_float("ANNOTATOR_IMAGE_FETCH_BACKOFF_BASE", 2.0)
IMAGE_FETCH_BACKOFF_MAX = env_float("ANNOTATOR_IMAGE_FETCH_BACKOFF_MAX", 120.0)
# A reference still pending this long after it was sent (its message lost) is sent again by the sweep.
IMAGE_FETCH_RESEND_AFTER = env_float("ANNOTATOR_IMAGE_FETCH_RESEND_AFTER", 3600.0)

# API tokens expire this many hours after they were issued (0: never); a password change deletes them.
TOKEN_TTL_HOURS = env_float("ANNOTATOR_TOKEN_TTL_HOURS", 720)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "annotator.tokens.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # JSON nested past feedback.limits.JSON_MAX_DEPTH is a 400, not a RecursionError.
    "DEFAULT_PARSER_CLASSES": [
        "feedback.rest.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # Token requests per client address (annotator.token_view.ObtainToken).
    "DEFAULT_THROTTLE_RATES": {"auth-token": os.environ.get("ANNOTATOR_TOKEN_RATE", "20/min")},
    "NUM_PROXIES": PROXY_COUNT,
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # One error body for every refusal: {"detail", "code", "errors"} (feedback/api/errors.py).
    "EXCEPTION_HANDLER": "feedback.rest.errors.api_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# The OpenAPI document, served at /api/schema/ to signed-in users (token or session) only.
SPECTACULAR_SETTINGS = {
    "TITLE": "Feedback annotator API",
    "VERSION": "1.0.0",
    "DESCRIPTION": (
        "Projects, samples, imports, LLM drafting jobs and human review of the feedback on "
        "vision-language model responses. Authenticate with `Authorization: Token <key>` (from "
        "`/api/auth/token/`) or with the session cookie plus the `X-CSRFToken` header on unsafe methods."
    ),
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Every operation's error answers (400/401/403/404/409/413/429) declared with the one error body.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "feedback.rest.schema.declare_errors"],
    "ENUM_NAME_OVERRIDES": {
        "AssignmentStateEnum": "feedback.review.models.Assignment.State",
        "JobStateEnum": "feedback.jobs.models.Job.State",
        "JobKindEnum": "feedback.jobs.models.Job.Kind",
        "ReleaseStateEnum": "exports.models.Release.State",
        "RoleEnum": "feedback.models.Role",
        "ReviewOrderEnum": "feedback.models.ReviewOrder",
        "JobModeEnum": "feedback.jobs.models.JobMode",
        "TrialStateEnum": "feedback.trials.models.Trial.State",
    },
}

# Celery. The filesystem broker needs nothing installed; Redis or RabbitMQ for several machines.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker" / os.environ.get("ANNOTATOR_BROKER_NAME", "default")
    for sub in ("queue", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        # The transport polls its folder; the default second would idle workers between tasks.
        "polling_interval": 0.05,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {}
# Time limits of a task (seconds; imports and release builds are the long ones). The prefork pool
# enforces them (soft: the task fails with its reason; hard: its process is ended); the threads
# pool cannot stop a thread, so there the lease below is what recovers a hung task's work.
CELERY_TASK_SOFT_TIME_LIMIT = env_int("ANNOTATOR_TASK_SOFT_TIME_LIMIT", 6 * 3600)
CELERY_TASK_TIME_LIMIT = env_int("ANNOTATOR_TASK_TIME_LIMIT", CELERY_TASK_SOFT_TIME_LIMIT + 600)
if CELERY_BROKER_URL.startswith(("redis", "rediss")):
    # Redis redelivers a message not acknowledged within this many seconds: above the longest
    # task, or a task still running would be delivered again (its attempt token refuses it anyway).
    CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] = env_int(
        "ANNOTATOR_REDIS_VISIBILITY_TIMEOUT", CELERY_TASK_TIME_LIMIT + 3600
    )
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_DEFAULT_QUEUE = "default"
# Every task of the project is named where it is defined and routed here by that exact name (no
# patterns): renaming a function cannot move its task to another queue without a change here, and
# a test holds every registered task to an entry of this table.
CELERY_TASK_ROUTES = {
    "feedback.tasks.import_batch_run_task": {"queue": "default"},
    "feedback.tasks.image_fetch_task": {"queue": "default"},
    "feedback.tasks.image_fetch_dispatch_task": {"queue": "default"},
    "feedback.tasks.job_dispatch_task": {"queue": "default"},
    "feedback.tasks.job_watch_task": {"queue": "default"},
    "feedback.tasks.job_batch_task": {"queue": "default"},
    "feedback.tasks.llm_item_run": {"queue": "llm"},
    "feedback.trials.tasks.trial_item_run": {"queue": "llm"},
    "feedback.trials.tasks.trial_watch": {"queue": "default"},
    "exports.tasks.release_build_task": {"queue": "exports"},
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Imports and release builds hold an attempt with a lease, renewed at every chunk. A worker's
# sweep (every ANNOTATOR_SWEEP_INTERVAL seconds, one worker per interval) queues again the work of
# an attempt whose lease ran out, or whose process on this machine is gone; see feedback/recovery.py.
WORK_LEASE = env_float("ANNOTATOR_WORK_LEASE", 120.0)
SWEEP_INTERVAL = env_float("ANNOTATOR_SWEEP_INTERVAL", 30.0)
# Workers record a heartbeat this often (seconds); one not seen for WORKER_STALE_AFTER is flagged
# stale on the Workers page. /healthz gives the broker this long to answer.
WORKER_HEARTBEAT_INTERVAL = env_float("ANNOTATOR_WORKER_HEARTBEAT_INTERVAL", 30.0)
WORKER_STALE_AFTER = env_float("ANNOTATOR_WORKER_STALE_AFTER", 3 * WORKER_HEARTBEAT_INTERVAL)
HEALTH_TIMEOUT = env_float("ANNOTATOR_HEALTH_TIMEOUT", 3.0)
# Uploads are removed once their import completes; those of a failed import are kept this long.
FAILED_UPLOAD_KEEP_HOURS = env_float("ANNOTATOR_FAILED_UPLOAD_KEEP_HOURS", 72.0)
# Per project: releases kept (queued, building or completed) and their files' bytes.
RELEASE_QUOTA_COUNT = env_int("ANNOTATOR_RELEASE_QUOTA_COUNT", 50)
RELEASE_QUOTA_BYTES = env_int("ANNOTATOR_RELEASE_QUOTA_BYTES", 50 * 1024**3)
RELEASE_CHUNK_SIZE = env_int("ANNOTATOR_RELEASE_CHUNK_SIZE", 1000)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # The HTTP client logs every request at INFO: noise, and a cost on every LLM call.
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}

# The LLM boundary. Keys come from the environment only: never stored, logged, shown or exported.
# With no key, the demo points at the project's own simulator (bin/run starts it on port 8001).
LLM_BASE_URL = os.environ.get("ANNOTATOR_LLM_BASE_URL", "http://127.0.0.1:8001/v1")
LLM_API_KEY = os.environ.get("ANNOTATOR_LLM_API_KEY", "")
LLM_MODEL = os.environ.get("ANNOTATOR_LLM_MODEL", "annotator-simulator")
RESPONDER_BASE_URL = os.environ.get("ANNOTATOR_RESPONDER_BASE_URL", LLM_BASE_URL)
# Without a key of its own, the responder uses the drafting key only on the drafting server.
RESPONDER_API_KEY = os.environ.get("ANNOTATOR_RESPONDER_API_KEY", "")
RESPONDER_MODEL = os.environ.get("ANNOTATOR_RESPONDER_MODEL", "annotator-simulator-vision")
# Named connections beside the built-in "default" and "responder" (feedback/drafting/connections.py):
# {"name": {"base_url": ..., "api_key_env": "VAR", "models": [...], "model": ..., "rpm": N, "tpm": N}}.
LLM_CONNECTIONS = json.loads(os.environ.get("ANNOTATOR_LLM_CONNECTIONS", "") or "{}")
LLM_TIMEOUT = env_float("ANNOTATOR_LLM_TIMEOUT", 60.0)
LLM_MAX_TOKENS = env_int("ANNOTATOR_LLM_MAX_TOKENS", 1024)
# Failed attempts per item before it fails (429s do not count), and the backoff between them.
LLM_MAX_ATTEMPTS = env_int("ANNOTATOR_LLM_MAX_ATTEMPTS", 5)
LLM_BACKOFF_BASE = env_float("ANNOTATOR_LLM_BACKOFF_BASE", 1.0)
LLM_BACKOFF_MAX = env_float("ANNOTATOR_LLM_BACKOFF_MAX", 60.0)
# The global rate limit, shared by every worker on every machine; 0 means none.
LLM_REQUESTS_PER_MINUTE = env_int("ANNOTATOR_LLM_RPM", 0)
LLM_TOKENS_PER_MINUTE = env_int("ANNOTATOR_LLM_TPM", 0)
# "auto": Redis when the broker is Redis, the database otherwise.
RATE_LIMIT_BACKEND = os.environ.get("ANNOTATOR_RATE_LIMIT_BACKEND", "auto")
RATE_LIMIT_REDIS_URL = os.environ.get(
    "ANNOTATOR_RATE_LIMIT_REDIS_URL", CELERY_BROKER_URL if CELERY_BROKER_URL.startswith("redis") else ""
)
# Longest a worker sleeps for its rate-limit slot before it hands the item back to the queue.
RATE_LIMIT_MAX_WAIT = env_float("ANNOTATOR_RATE_LIMIT_MAX_WAIT", 10.0)
# US dollars per million tokens, input and output, by model name. The simulator's price is
# notional, so that budgets can be tried on the demo.
LLM_PRICES: dict[str, list[float]] = {
    "annotator-simulator": [0.5, 1.5],
    "annotator-simulator-vision": [0.5, 1.5],
    "annotator-simulator-reasoning": [1.1, 4.4],
    **json.loads(os.environ.get("ANNOTATOR_LLM_PRICES", "{}")),
}
# Jobs: items enqueued at once per job, how long a queued or running item may go unseen before
# a watcher re-enqueues it, and how often the watcher looks.
JOB_WINDOW = env_int("ANNOTATOR_JOB_WINDOW", 200)
JOB_LEASE = env_float("ANNOTATOR_JOB_LEASE", 300.0)
JOB_WATCH_INTERVAL = env_float("ANNOTATOR_JOB_WATCH_INTERVAL", 5.0)
# Batch mode: requests and bytes per uploaded file (under the provider's 50,000 and 200 MB), files
# in flight per job, how often the poller looks at a job's batches, how long one of its steps
# (upload, read) may run before another worker takes it over, the timeout of a file's upload or
# download, and the batch price as a fraction of the live price.
JOB_BATCH_MAX_REQUESTS = env_int("ANNOTATOR_JOB_BATCH_MAX_REQUESTS", 50_000)
JOB_BATCH_MAX_BYTES = env_int("ANNOTATOR_JOB_BATCH_MAX_BYTES", 190 * 1024 * 1024)
JOB_BATCH_OPEN_PARTS = env_int("ANNOTATOR_JOB_BATCH_OPEN_PARTS", 20)
JOB_BATCH_POLL_INTERVAL = env_float("ANNOTATOR_JOB_BATCH_POLL_INTERVAL", 30.0)
JOB_BATCH_LEASE = env_float("ANNOTATOR_JOB_BATCH_LEASE", 1800.0)
JOB_BATCH_TIMEOUT = env_float("ANNOTATOR_JOB_BATCH_TIMEOUT", 600.0)
LLM_BATCH_PRICE = env_float("ANNOTATOR_LLM_BATCH_PRICE", 0.5)

# Human review: how long a claimed sample stays leased without a renewal (the page renews it
# while open), and how often the page renews.
REVIEW_LEASE_SECONDS = env_int("ANNOTATOR_REVIEW_LEASE", 900)
REVIEW_RENEW_SECONDS = env_int("ANNOTATOR_REVIEW_RENEW", 60)
