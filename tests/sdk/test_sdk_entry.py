"""The pure parts of the build entry: target resolution, config and the
pre-import helpers (`wasmhost._entry` itself needs the component bindings)."""

from __future__ import annotations

import sys
import types

import pytest

import wasmhost
from wasmhost import _preimport
from wasmhost._target import Spec, parse_target, resolve


def module(name: str = "fake_app", **attrs) -> types.ModuleType:
    mod = types.ModuleType(name)
    for key, value in attrs.items():
        setattr(mod, key, value)
    return mod


class PlainHandler:
    def handle(self, request, response_out):  # pragma: no cover - never called
        pass


class FlaskLike:
    def wsgi_app(self, environ, start_response):  # pragma: no cover
        return []

    def __call__(self, environ, start_response):  # pragma: no cover
        return []


def test_parse_target() -> None:
    assert parse_target("app") == Spec("app", "app", False)
    assert parse_target("pkg.mod:application") == Spec("pkg.mod", "application", True)
    assert parse_target("mod:obj.attr") == Spec("mod", "obj.attr", True)
    for bad in ("", "a b", "mod:", "mod:1x", "-x", ":app"):
        with pytest.raises(ValueError):
            parse_target(bad)


def test_resolve_auto() -> None:
    app = wasmhost.App()
    assert resolve(module(app=app), parse_target("m")).kind == "sdk"
    assert resolve(module(IncomingHandler=PlainHandler), parse_target("m")).kind == "plain"
    # An App wins over a plain handler in the same module.
    assert resolve(module(app=app, IncomingHandler=PlainHandler), parse_target("m")).kind == "sdk"
    flask_like = FlaskLike()
    target = resolve(module(app=flask_like), parse_target("m"))
    assert (target.kind, target.obj) == ("wsgi", flask_like)
    nested = types.SimpleNamespace(api=app)
    assert resolve(module(server=nested), parse_target("m:server.api")).obj is app


def test_resolve_auto_errors() -> None:
    with pytest.raises(LookupError, match="wasmhost.App"):
        resolve(module(), parse_target("m"))
    with pytest.raises(TypeError, match="wsgi"):
        resolve(module(app=lambda environ, start_response: []), parse_target("m"))


def test_resolve_explicit_interfaces() -> None:
    app = wasmhost.App()
    wsgi = lambda environ, start_response: []  # noqa: E731
    assert resolve(module(app=app), parse_target("m"), "sdk").obj is app
    assert resolve(module(application=wsgi), parse_target("m:application"), "wsgi").obj is wsgi
    with pytest.raises(TypeError):
        resolve(module(app=wsgi), parse_target("m"), "sdk")
    with pytest.raises(TypeError):
        resolve(module(app="not callable"), parse_target("m"), "wsgi")
    with pytest.raises(LookupError):
        resolve(module(), parse_target("m"), "wsgi")
    with pytest.raises(ValueError):
        resolve(module(app=app), parse_target("m"), "asgi")


def test_env_and_config(monkeypatch) -> None:
    monkeypatch.setenv("WASMHOST_T_STR", "value")
    monkeypatch.setenv("WASMHOST_T_INT", " 42 ")
    monkeypatch.setenv("WASMHOST_T_BOOL", "Yes")
    monkeypatch.setenv("WASMHOST_T_LIST", "a, b,,c")
    monkeypatch.delenv("WASMHOST_T_MISSING", raising=False)
    assert wasmhost.env("WASMHOST_T_STR") == "value"
    assert wasmhost.env("WASMHOST_T_MISSING") is None
    assert wasmhost.env("WASMHOST_T_MISSING", "d") == "d"
    assert wasmhost.config["WASMHOST_T_STR"] == "value"
    assert "WASMHOST_T_STR" in wasmhost.config
    assert wasmhost.config.get_int("WASMHOST_T_INT") == 42
    assert wasmhost.config.get_int("WASMHOST_T_MISSING", 7) == 7
    assert wasmhost.config.get_bool("WASMHOST_T_BOOL") is True
    assert wasmhost.config.get_bool("WASMHOST_T_MISSING", True) is True
    assert wasmhost.config.get_list("WASMHOST_T_LIST") == ["a", "b", "c"]
    with pytest.raises(KeyError):
        wasmhost.config["WASMHOST_T_MISSING"]
    with pytest.raises(ValueError):
        wasmhost.config.get_int("WASMHOST_T_STR")
    with pytest.raises(ValueError) as error:
        wasmhost.config.get_bool("WASMHOST_T_STR")
    assert "'value'" not in str(error.value), "errors never show a value (it may be a secret)"
    assert "WASMHOST_T" not in repr(wasmhost.config) and "'value'" not in repr(wasmhost.config)
    monkeypatch.setenv("WASMHOST_T_STR", "changed")
    assert wasmhost.env("WASMHOST_T_STR") == "changed"


def test_kv_outside_the_host_fails_clearly_and_checks_types() -> None:
    bucket = wasmhost.kv.open("default")
    assert wasmhost.kv.open("default") is bucket
    with pytest.raises(wasmhost.kv.KeyValueError, match="only in an app served by wasmhost"):
        bucket.get("k")
    with pytest.raises(ValueError, match="delta >= 0"):
        bucket.increment("n", -1)
    with pytest.raises(TypeError, match="bytes or str"):
        bucket.set("k", 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="keys are str"):
        bucket.get(b"k")  # type: ignore[arg-type]


def test_import_all_skips_failures() -> None:
    name = "wasmhost_test_no_such_module"
    assert _preimport.import_all(["json", name, "_strptime"]) == [name]
    assert "_strptime" in sys.modules


def test_lazy_submodules_only_for_imported_packages(monkeypatch) -> None:
    fake = {
        "wasmhost_fake_pkg": ("wasmhost_fake_pkg.sub",),
        "json": ("json.tool", "wasmhost_fake_missing"),
        # imported because json.tool imports argparse: a second round
        "argparse": ("gettext",),
    }
    monkeypatch.setattr(_preimport, "LAZY_SUBMODULES", fake)
    failed = _preimport.preimport_lazy_submodules()
    assert failed == ["wasmhost_fake_missing"]  # the fake package was not tried
    assert "json.tool" in sys.modules
    assert "gettext" in sys.modules


def test_werkzeug_and_email_lazy_lists() -> None:
    assert "email.generator" in _preimport.LAZY_SUBMODULES["email"]
    assert "email.parser" in _preimport.LAZY_SUBMODULES["werkzeug"]
    assert "jinja2.debug" in _preimport.LAZY_SUBMODULES["jinja2"]


def test_common_modules_and_codecs() -> None:
    _preimport.preimport_common()
    for name in ("encodings.idna", "encodings.latin_1", "encodings.ascii", "_strptime", "http.cookies", "mimetypes", "uuid", "decimal"):
        assert name in sys.modules, name
    _preimport.warm()


def test_warm_compiles_flask_like_templates() -> None:
    compiled = []

    class Env:
        auto_reload = False

        def list_templates(self):
            return ["index.html", "image.png", "broken.html"]

        def get_template(self, name):
            if name == "broken.html":
                raise SyntaxError("bad template")
            compiled.append(name)

    _preimport.warm(types.SimpleNamespace(jinja_env=Env()))
    assert compiled == ["index.html"]


def test_after_restore_reseeds_random(monkeypatch) -> None:
    import random

    from wasmhost import _runtime

    monkeypatch.setattr(_runtime, "serving", False)

    random.seed(1)
    first = random.random()
    random.seed(1)
    _preimport.after_restore()
    assert random.random() != first
    assert _runtime.serving is True


def test_import_hint_explains_missing_modules() -> None:
    import importlib.util

    _preimport.install_import_hint()
    _preimport.install_import_hint()
    try:
        assert sum(finder is _preimport.BuildTimeImportHint for finder in sys.meta_path) == 1
        with pytest.raises(ModuleNotFoundError, match="imported when the app was built") as info:
            __import__("wasmhost_test_never_there")
        assert info.value.name == "wasmhost_test_never_there"
        # importlib.util.find_spec still answers None for a missing module.
        assert importlib.util.find_spec("wasmhost_test_never_there") is None
        import json  # noqa: F401 - present modules are unaffected
    finally:
        sys.meta_path.remove(_preimport.BuildTimeImportHint)


def test_spooled_files_can_stay_in_memory(monkeypatch) -> None:
    import tempfile

    monkeypatch.setattr(tempfile.SpooledTemporaryFile, "rollover", tempfile.SpooledTemporaryFile.rollover)
    _preimport.keep_spooled_files_in_memory(tempfile)
    with tempfile.SpooledTemporaryFile(max_size=10, mode="w+b") as spooled:
        spooled.write(b"x" * 100)
        spooled.seek(0)
        assert spooled.read() == b"x" * 100
        assert not spooled._rolled
