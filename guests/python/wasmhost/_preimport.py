"""Build-time imports, so that nothing needs importing at run time.

A component is a snapshot of the interpreter taken after the app module was
imported at build time. At run time only modules imported then can be
imported (plus pure ``.py`` files on a directory the host shows the guest).
Yet the standard library and frameworks import some modules lazily, inside
functions, on first use: ``"x".encode("idna")`` imports
``encodings.idna``, ``time.strptime`` imports ``_strptime``, Jinja2 imports
``jinja2.debug`` when a template raises... Under wasmhost that would fail
in production ("unknown encoding: idna"), so the build imports them ahead:

* `COMMON_MODULES`: stdlib modules commonly imported lazily or used by
  web apps; `CODECS`: text encodings (looked up, which caches them).
* `LAZY_SUBMODULES`: modules that packages import lazily (the stdlib's
  ``email``, Werkzeug, Jinja2, ...), imported only when the package
  itself was imported by the app (directly or not).
* `warm()`: runs a few operations whose first use imports or initialises
  something (codec lookups, `mimetypes`, `strptime`, traceback
  formatting, Flask's Jinja environment and templates).
* `preimport_stdlib()` (dev mode): (nearly) the whole standard library, so
  that an app imported at run time can use any of it.

Every step is best-effort: a module that does not exist or cannot be
imported in the guest is skipped.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from typing import Any

CODECS = (
    "utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le",
    "utf-32-be", "latin-1", "ascii", "idna", "punycode", "cp1252", "iso8859-15",
    "unicode-escape", "raw-unicode-escape", "charmap", "hex", "base64", "quopri",
    "zlib", "utf-7", "cp437", "mac-roman",
)
"""Codecs looked up at build time (``str.encode``/``bytes.decode`` names)."""

COMMON_MODULES = (
    # Codecs: imported on first lookup (str.encode / bytes.decode / codecs).
    "encodings", "encodings.aliases", "encodings.utf_8", "encodings.utf_8_sig",
    "encodings.utf_16", "encodings.utf_16_le", "encodings.utf_16_be", "encodings.utf_32",
    "encodings.utf_32_le", "encodings.utf_32_be", "encodings.latin_1", "encodings.ascii",
    "encodings.idna", "encodings.punycode", "encodings.cp1252", "encodings.iso8859_1",
    "encodings.iso8859_15", "encodings.unicode_escape", "encodings.raw_unicode_escape",
    "encodings.charmap", "encodings.hex_codec", "encodings.base64_codec",
    "encodings.quopri_codec", "encodings.zlib_codec", "encodings.utf_7",
    "encodings.cp437", "encodings.mac_roman",
    # Imported inside functions: by the idna codec and urllib.parse
    # (unicodedata, stringprep), time.strptime / datetime.strptime
    # (_strptime, locale, calendar), traceback formatting.
    "stringprep", "unicodedata", "_strptime", "locale", "calendar", "ipaddress",
    "traceback", "linecache", "tokenize", "_colorize", "_suggestions",
    # Small modules web apps commonly use.
    "json", "json.decoder", "json.encoder", "json.scanner", "urllib", "urllib.parse",
    "http", "http.cookies", "mimetypes", "base64", "binascii", "hashlib", "_md5",
    "_sha1", "_sha2", "_sha3", "_blake2", "_hmac", "hmac", "secrets", "random", "uuid",
    "datetime", "time", "decimal", "string", "struct", "copy", "re", "io",
    "dataclasses", "enum", "functools", "itertools", "operator", "collections",
    "collections.abc", "contextlib", "typing", "weakref", "zlib",
)
"""Standard-library modules imported by every build (missing ones are skipped)."""

_EMAIL = (
    "email.utils", "email.message", "email.parser", "email.feedparser",
    "email.bytesparser", "email.generator", "email.header", "email.headerregistry",
    "email.policy", "email._policybase", "email.charset", "email.encoders",
    "email.errors", "email.base64mime", "email.quoprimime", "email.iterators",
    "email._encoded_words", "email._parseaddr", "email._header_value_parser",
    "email.contentmanager", "quopri",
)

LAZY_SUBMODULES: dict[str, tuple[str, ...]] = {
    # stdlib packages whose functions import more of the package lazily
    "email": _EMAIL,
    "http.client": ("email.parser", "email.feedparser", "email.message"),
    "logging": ("logging.handlers",),
    "concurrent": ("concurrent.futures", "concurrent.futures.thread"),
    "xml.etree": ("xml.etree.ElementTree", "xml.parsers.expat"),
    # importlib.metadata.version() (redis-py and others ask for their own version)
    "importlib.metadata": (
        "importlib.metadata._adapters", "importlib.metadata._meta", "importlib.metadata._text",
        "importlib.metadata._collections", "importlib.metadata._functools", "importlib.metadata._itertools",
        "email.message", "email.policy", "csv", "zipfile", "zipfile._path", "pathlib",
    ),
    # zoneinfo.ZoneInfo(key) reads the tzdata package's files (a guest has
    # no system time zone database)
    "zoneinfo": (
        "importlib.resources", "importlib.resources._common", "importlib.resources._adapters",
        "importlib.resources.abc", "importlib.resources.readers", "importlib.resources._itertools",
        "importlib.resources._functional", "importlib.readers", "zoneinfo._common", "zoneinfo._tzpath",
        "zoneinfo._zoneinfo", "bisect",
    ),
    # third-party packages
    "flask": ("flask.debughelpers", "flask.json.provider", "flask.json.tag", "flask.sessions"),
    "werkzeug": (
        "werkzeug.formparser", "werkzeug.sansio.multipart", "werkzeug.http", "werkzeug.urls",
        "werkzeug.utils", "werkzeug.wsgi", "werkzeug.security", "werkzeug.exceptions",
        "werkzeug.datastructures", "werkzeug.routing", "werkzeug.middleware.proxy_fix",
        "werkzeug.middleware.shared_data", "tempfile", *_EMAIL,
    ),
    "jinja2": (
        "jinja2.debug", "jinja2.constants", "jinja2.ext", "jinja2.sandbox",
        "jinja2.nativetypes", "jinja2.meta", "jinja2.bccache", "jinja2.compiler",
        "jinja2.loaders", "textwrap",
    ),
    "markupsafe": ("markupsafe._native",),
    "itsdangerous": ("itsdangerous.url_safe", "itsdangerous.timed"),
    "pydantic": ("pydantic.json_schema", "pydantic.deprecated.decorator"),
    "sqlite3": ("sqlite3.dbapi2", "sqlite3.dump"),
    # SQLAlchemy imports its dialects and some ORM strategies on first use
    "sqlalchemy": (
        "sqlalchemy.dialects.sqlite", "sqlalchemy.dialects.sqlite.base", "sqlalchemy.dialects.sqlite.pysqlite",
        "sqlalchemy.dialects.sqlite.dml", "sqlalchemy.dialects.sqlite.json", "sqlalchemy.orm.dynamic",
        "sqlalchemy.orm.writeonly", "sqlalchemy.orm.evaluator", "sqlalchemy.orm.loading", "sqlalchemy.orm.strategies",
        "sqlalchemy.engine.characteristics", "sqlalchemy.sql.lambdas", "wasmhost.sqlalchemy",
    ),
    # Django imports these on the first query, response or error
    "django": (
        "django.db.models.sql.compiler", "django.db.backends.sqlite3.base", "django.db.backends.sqlite3.schema",
        "django.views.debug", "django.views.defaults", "django.views.csrf", "django.template.defaulttags",
        "django.template.defaultfilters", "django.template.loader_tags", "django.templatetags.static",
        "django.core.handlers.exception", "django.http.multipartparser", "django.utils.dateformat",
        "django.utils.timesince", "django.contrib.messages.storage.fallback", "django.contrib.messages.storage.cookie",
        "django.contrib.messages.storage.session", "django.contrib.sessions.backends.db",
        "django.contrib.sessions.serializers", "django.core.signing", "django.core.serializers.json",
        "wasmhost.django.base", "code", "codeop",  # `manage.py shell` (`wasmhost run`)
    ),
}
"""Modules imported lazily by a package (stdlib or third-party), imported
at build time only when that package itself was imported by the app."""

DEV_SKIP = frozenset(
    {
        "__main__", "antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo",
        "ensurepip", "venv", "pydoc", "pydoc_data", "test", "lib2to3", "msvcrt", "winreg",
        "winsound", "_winapi", "nt", "_tkinter", "curses", "readline", "_curses",
        "_curses_panel", "_wmi", "_overlapped", "_android_support", "_ios_support",
    }
)
"""Standard-library modules dev mode does not import (they do something on
import, or cannot work in a wasm guest)."""


def import_all(names: Iterable[str]) -> list[str]:
    """Import each module that imports cleanly; the names that did not."""
    failed = []
    for name in names:
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except BaseException:  # noqa: BLE001 - not available in the guest: skip it
            failed.append(name)
    return failed


def preimport_common() -> list[str]:
    """Import `COMMON_MODULES` and look up `CODECS`; the modules that failed."""
    failed = import_all(COMMON_MODULES)
    lookup_codecs()
    return failed


def preimport_lazy_submodules() -> list[str]:
    """Import `LAZY_SUBMODULES` of the packages that are imported (again
    while that brings in more keyed packages)."""
    failed: list[str] = []
    done: set[str] = set()
    while True:
        ready = [package for package in LAZY_SUBMODULES if package in sys.modules and package not in done]
        if not ready:
            return failed
        for package in ready:
            done.add(package)
            failed += import_all(LAZY_SUBMODULES[package])


def preimport_stdlib() -> list[str]:
    """Import (nearly) every standard-library module and submodule (dev
    mode)."""
    names = sorted(getattr(sys, "stdlib_module_names", ()))
    failed = import_all(name for name in names if name not in DEV_SKIP)
    failed += import_all(stdlib_submodules(name for name in names if name not in DEV_SKIP))
    failed += import_all(name for name in COMMON_MODULES if name not in DEV_SKIP)
    lookup_codecs()
    return failed


def stdlib_submodules(packages: Iterable[str]) -> list[str]:
    """The submodules (recursively) of the imported packages among
    `packages`, except ``__main__`` modules, tests and `DEV_SKIP`."""
    import pkgutil  # noqa: PLC0415

    found: list[str] = []
    pending = [name for name in packages if hasattr(sys.modules.get(name), "__path__")]
    while pending:
        package = pending.pop(0)
        module = sys.modules.get(package)
        path = getattr(module, "__path__", None)
        if path is None:
            continue
        try:
            infos = list(pkgutil.iter_modules(path, package + "."))
        except Exception:  # noqa: BLE001 - unreadable package directory
            continue
        for info in sorted(infos, key=lambda i: i.name):
            last = info.name.rpartition(".")[2]
            if last in _SKIP_SUBMODULES or info.name in DEV_SKIP:
                continue
            found.append(info.name)
            if info.ispkg:
                try:
                    importlib.import_module(info.name)
                except BaseException:  # noqa: BLE001
                    continue
                pending.append(info.name)
    return found


_SKIP_SUBMODULES = frozenset({"__main__", "test", "tests", "idle_test", "_test"})


def lookup_codecs() -> None:
    """Look up `CODECS` (importing and caching their modules)."""
    import codecs  # noqa: PLC0415

    for name in CODECS:
        try:
            codecs.lookup(name)
        except LookupError:
            pass
    try:
        "bücher.example".encode("idna")
    except Exception:  # noqa: BLE001, S110
        pass


def warm(target: Any = None) -> None:
    """Run operations whose first use imports or initialises something, so
    that it happens at build time. `target` is the app object (a Flask app
    gets its Jinja environment created and templates compiled)."""
    _try(_warm_stdlib)
    if target is not None and hasattr(target, "jinja_env"):
        _try(lambda: _warm_flask(target))
    if "django" in sys.modules:
        _try(_warm_django)


def _try(func: Any) -> None:
    try:
        func()
    except BaseException:  # noqa: BLE001, S110 - warming is best-effort
        pass


def _warm_stdlib() -> None:
    import datetime  # noqa: PLC0415
    import mimetypes  # noqa: PLC0415
    import time  # noqa: PLC0415
    import traceback  # noqa: PLC0415

    mimetypes.init()
    mimetypes.guess_type("index.html")
    if "urllib.parse" in sys.modules:
        import urllib.parse  # noqa: PLC0415

        _try(lambda: urllib.parse.urlsplit("http://[::1]:8080/p?q=1#f"))
        _try(lambda: urllib.parse.urlsplit("http://b\u00fccher.example/"))
    _try(lambda: time.strptime("2024-01-02", "%Y-%m-%d"))
    _try(lambda: datetime.datetime.strptime("2024-01-02T03:04:05", "%Y-%m-%dT%H:%M:%S"))
    _try(lambda: datetime.datetime.fromisoformat("2024-01-02T03:04:05+00:00"))

    empty: dict[str, int] = {}

    def fail() -> int:
        return empty["missing"]

    try:
        fail()
    except KeyError as error:
        traceback.format_exception(type(error), error, error.__traceback__)
    try:
        undefined_name  # type: ignore[name-defined]  # noqa: B018, F821
    except NameError as error:
        traceback.format_exception(type(error), error, error.__traceback__)
    if "email" in sys.modules:
        import email.utils  # noqa: PLC0415

        _try(lambda: email.utils.format_datetime(datetime.datetime.now(datetime.timezone.utc)))
        _try(lambda: email.utils.parsedate_to_datetime("Wed, 21 Oct 2015 07:28:00 GMT"))
    if "http.cookies" in sys.modules:
        import http.cookies  # noqa: PLC0415

        _try(lambda: http.cookies.SimpleCookie("a=b; c=d").output())


def _warm_flask(app: Any) -> None:
    """Create a Flask app's Jinja environment and compile its templates."""
    env = app.jinja_env
    if getattr(env, "auto_reload", False):
        return
    for name in env.list_templates():
        if name.endswith((".html", ".htm", ".xml", ".txt", ".j2", ".jinja", ".jinja2", ".svg")):
            _try(lambda name=name: env.get_template(name))


MAX_WARM_TEMPLATES = 500
"""Most templates a Django project gets compiled at build time."""


def _warm_django() -> None:
    """For a Django project set up at import (``get_wsgi_application()``):
    load its database backends, URL patterns (urls and views modules), the
    default time zone, the default language's translations and its own
    templates (each compiled once, which imports its tag libraries), so
    that a new instance does not do it on its first request."""
    from django.apps import apps  # noqa: PLC0415
    from django.conf import settings  # noqa: PLC0415

    if not settings.configured or not apps.ready:
        return
    from django.db import connections  # noqa: PLC0415

    for alias in connections:
        _try(lambda alias=alias: importlib.import_module(connections[alias].ops.compiler_module))
    from django.urls import get_resolver  # noqa: PLC0415

    _try(lambda: get_resolver()._populate())
    if settings.USE_TZ:
        from django.utils import timezone  # noqa: PLC0415

        _try(timezone.get_default_timezone)  # cached: its zone file is read once, now
    if settings.USE_I18N:
        from django.utils import translation  # noqa: PLC0415

        _try(lambda: translation.activate(settings.LANGUAGE_CODE))
        _try(lambda: translation.gettext("wasmhost"))
        _try(translation.deactivate)
    _try(_warm_django_templates)


def _warm_django_templates() -> None:
    import os  # noqa: PLC0415

    import django  # noqa: PLC0415
    from django.template import engines  # noqa: PLC0415

    bundled = os.path.dirname(django.__file__)
    compiled = 0
    for engine in engines.all():
        for directory in _template_dirs(engine):
            if directory.startswith(bundled) or not os.path.isdir(directory):
                continue
            for root, _dirs, files in os.walk(directory):
                for name in files:
                    if compiled >= MAX_WARM_TEMPLATES:
                        return
                    relative = os.path.relpath(os.path.join(root, name), directory).replace(os.sep, "/")
                    _try(lambda relative=relative: engine.get_template(relative))
                    compiled += 1


def _template_dirs(engine: Any) -> list[str]:
    """The directories a Django template engine's loaders look in."""
    found: list[str] = []
    inner = getattr(engine, "engine", None)
    pending = list(getattr(inner, "template_loaders", []))
    while pending:
        loader = pending.pop(0)
        pending += list(getattr(loader, "loaders", []))
        get_dirs = getattr(loader, "get_dirs", None)
        if get_dirs is not None and not hasattr(loader, "loaders"):
            found += [str(directory) for directory in get_dirs()]
    return found


def after_restore() -> None:
    """Run once per instance at run time, before the first request.

    * `wasmhost._runtime.serving` becomes true.
    * The interpreter was snapshotted at build time, so state initialised
      at import is shared by every instance: `random`'s generator is
      reseeded from the OS so that instances do not all produce the same
      numbers.
    * A guest has no writable directory: when `tempfile` finds none,
      `tempfile.SpooledTemporaryFile` stays in memory instead of failing
      to roll over to disk (Werkzeug spools large uploads with it).
    """
    from . import _runtime  # noqa: PLC0415

    _runtime.mark_serving()
    module = sys.modules.get("random")
    if module is not None:
        try:
            module.seed()
        except Exception:  # noqa: BLE001, S110
            pass
    tempfile = sys.modules.get("tempfile")
    if tempfile is not None and getattr(tempfile, "tempdir", None) is None:
        try:
            tempfile.gettempdir()
        except OSError:
            keep_spooled_files_in_memory(tempfile)


def keep_spooled_files_in_memory(tempfile: Any) -> None:
    """Make `SpooledTemporaryFile` never roll over to a real file."""

    def rollover(self: Any) -> None:
        """In-memory only: the guest has no writable temporary directory."""

    tempfile.SpooledTemporaryFile.rollover = rollover


class BuildTimeImportHint:
    """A last `sys.meta_path` finder explaining a failed import at run time.

    Under wasmhost only modules imported at build time can be imported at
    run time (plus pure ``.py`` files on a directory the host shows the
    guest), so ``import email`` inside a function can fail in production
    although the module exists. This finder runs after all others have
    failed and raises `ModuleNotFoundError` with that explanation.
    """

    @classmethod
    def find_spec(cls, name: str, path: Any = None, target: Any = None) -> None:
        if _probing():
            return None  # importlib.util.find_spec(): "not found" is an answer
        top = name.partition(".")[0]
        stdlib = top in getattr(sys, "stdlib_module_names", ())
        what = "standard-library module" if stdlib else "module"
        raise ModuleNotFoundError(
            f"No module named {name!r}: under wasmhost, a {what} can only be "
            "imported at run time if it was imported when the app was built; "
            f"import {name} at the top of your module (or install it, if it "
            "is a dependency)",
            name=name,
        )


def _probing() -> bool:
    """Whether the import system was asked through `importlib.util.find_spec`
    (which callers expect to return None for a missing module)."""
    frame = sys._getframe(2)
    for _ in range(8):
        if frame is None:
            return False
        code = frame.f_code
        if code.co_name == "find_spec" and code.co_filename.endswith(("importlib/util.py", "importlib.util>")):
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def install_import_hint() -> None:
    """Append `BuildTimeImportHint` to `sys.meta_path` (once)."""
    if not any(finder is BuildTimeImportHint for finder in sys.meta_path):
        sys.meta_path.append(BuildTimeImportHint)
