"""How settings are loaded, shared by the station agent and the head-office hub.

Embedded defaults, then a TOML file, then environment variables, then command-line flags. Every
section forbids unknown keys and a prefixed environment variable that names no setting is an
error, so a typo is refused at start-up instead of silently ignored. Errors are Spanish first
(English with ``LOYALTY_LANG=en``), name the setting and never echo its value: URLs and passwords
end up pasted into tickets.
"""
from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlparse

from pydantic import BaseModel, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, TomlConfigSettingsSource

LANG_ENV = "LOYALTY_LANG"


class ConfigError(Exception):
    """A configuration the program cannot run with; ``str()`` is the Spanish text."""

    def __init__(self, es: str, en: str | None = None) -> None:
        super().__init__(es)
        self.es = es
        self.en = en or es

    def text(self, lang: str | None = None) -> str:
        return self.en if (lang or preferred_language()) == "en" else self.es


def preferred_language(environ: Mapping[str, str] | None = None) -> str:
    """``es`` unless ``LOYALTY_LANG`` asks for English. Not ``LANG``: a station PC installed with
    an English locale would otherwise switch every message for a Spanish-speaking technician."""
    env = os.environ if environ is None else environ
    return "en" if env.get(LANG_ENV, "").lower().startswith("en") else "es"


class TomlSettings(BaseSettings):
    """Settings whose file source is chosen per load (see :func:`load`), never globally."""

    toml_file: ClassVar[Path | None] = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls.toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls.toml_file))
        return tuple(sources)


S = TypeVar("S", bound=TomlSettings)


def load(settings_cls: type[S], config_env: str, config_file: Path | None = None,
         overrides: dict[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> S:
    """Build ``settings_cls`` from its sources; ``overrides`` are nested dicts from flags."""
    env = os.environ if environ is None else environ
    path = config_file or (Path(env[config_env]) if env.get(config_env) else None)
    if path is not None and not path.is_file():
        raise ConfigError(f"no existe el archivo de configuración: {path}", f"config file not found: {path}")
    reject_unknown_variables(settings_cls, config_env, env)

    class _FileSettings(settings_cls):  # type: ignore[valid-type,misc]  # a subclass per call
        pass

    _FileSettings.toml_file = path
    try:
        return _FileSettings(**(overrides or {}))  # type: ignore[no-any-return]
    except ValidationError as exc:
        raise ConfigError(describe(exc, "es"), describe(exc, "en")) from None
    except Exception as exc:  # a TOML syntax error: its text names the line, not a value
        raise ConfigError(f"archivo de configuración ilegible: {exc}", f"unreadable config file: {exc}") from exc


def reject_unknown_variables(settings_cls: type[BaseSettings], config_env: str, environ: Mapping[str, str]) -> None:
    """``LOYALTY_AGENT_MQTT_URL`` for ``LOYALTY_AGENT_MQTT__URL`` would be ignored by
    pydantic-settings and the program would run without what the technician set."""
    prefix = str(settings_cls.model_config.get("env_prefix", ""))
    known = set(settings_cls.model_fields)
    for name in sorted(environ):
        if not name.upper().startswith(prefix) or name.upper() == config_env:
            continue
        head = name[len(prefix):].split("__", 1)[0].lower()
        if head in known:
            continue
        hint_es = hint_en = ""
        guess = difflib.get_close_matches(head, known, n=1)
        if guess:
            annotation = settings_cls.model_fields[guess[0]].annotation
            section = isinstance(annotation, type) and issubclass(annotation, BaseModel)
            suggestion = f"{prefix}{guess[0].upper()}{'__...' if section else ''}"
            hint_es, hint_en = f"; ¿quiso decir {suggestion}?", f"; did you mean {suggestion}?"
        sections = ", ".join(sorted(known))
        raise ConfigError(
            f"variable de entorno desconocida {name}: use {prefix}<SECCIÓN>__<CAMPO> con SECCIÓN una de "
            f"{sections}{hint_es}",
            f"unknown environment variable {name}: settings are {prefix}<SECTION>__<FIELD> with SECTION "
            f"one of {sections}{hint_en}")


# pydantic's own messages are English; these are the ones a settings file can provoke. A type
# not listed keeps pydantic's text (still naming the setting).
_SPANISH: dict[str, str] = {
    "missing": "falta este valor",
    "extra_forbidden": "clave desconocida (revise la ortografía)",
    "int_parsing": "debe ser un número entero",
    "int_type": "debe ser un número entero",
    "int_from_float": "debe ser un número entero",
    "float_parsing": "debe ser un número",
    "float_type": "debe ser un número",
    "bool_parsing": "debe ser true o false",
    "bool_type": "debe ser true o false",
    "string_type": "debe ser texto",
    "greater_than": "debe ser mayor que {gt}",
    "greater_than_equal": "debe ser mayor o igual que {ge}",
    "less_than": "debe ser menor que {lt}",
    "less_than_equal": "debe ser menor o igual que {le}",
    "string_too_short": "debe tener al menos {min_length} caracteres",
    "string_too_long": "debe tener como máximo {max_length} caracteres",
    "string_pattern_mismatch": "formato inválido (debe cumplir {pattern})",
    "literal_error": "debe ser uno de: {expected}",
    "enum": "debe ser uno de: {expected}",
    "dict_type": "debe ser una sección (tabla TOML)",
    "model_type": "debe ser una sección (tabla TOML)",
    "model_attributes_type": "debe ser una sección (tabla TOML)",
    "list_type": "debe ser una lista",
    "path_type": "debe ser una ruta de archivo",
    "too_short": "debe tener al menos {min_length} elementos",
    "too_long": "debe tener como máximo {max_length} elementos",
}


def describe(exc: ValidationError, lang: str = "es") -> str:
    """One line per bad setting, without the value given."""
    lines = []
    for err in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in err["loc"])
        lines.append(f"{where}: {_message(err, lang)}" if where else _message(err, lang))
    headline = "invalid settings" if lang == "en" else "configuración inválida"
    return f"{headline}:\n  " + "\n  ".join(lines)


def _message(err: Any, lang: str) -> str:
    if err["type"] == "value_error":
        return bilingual_text(str(err["msg"]).removeprefix("Value error, "), lang)
    template = _SPANISH.get(err["type"]) if lang == "es" else None
    if template is None:
        return str(err["msg"])
    ctx = dict(err.get("ctx") or {})
    if "expected" in ctx:  # pydantic's English list: "'A', 'B' or 'C'"
        ctx["expected"] = str(ctx["expected"]).replace(" or ", " o ")
    try:
        return template.format(**ctx)
    except (KeyError, IndexError):
        return str(err["msg"])


BILINGUAL_SEPARATOR = " ||en: "


def bilingual(es: str, en: str) -> ValueError:
    """A validator's error in both languages; :func:`describe` picks one. pydantic carries only a
    string, so both travel in it."""
    return ValueError(f"{es}{BILINGUAL_SEPARATOR}{en}")


def bilingual_text(message: str, lang: str) -> str:
    es, sep, en = message.partition(BILINGUAL_SEPARATOR)
    return en if (sep and lang == "en") else es


def check_broker_url(value: str | None, password_hint: str) -> str | None:
    """``mqtt://host:port`` or ``mqtts://host:port`` and nothing else; empty means none. Checked in
    the settings so check-config catches it, not the sync thread hours later."""
    if not value:
        return None
    parsed = urlparse(value)
    if "@" in parsed.netloc:
        raise bilingual(f"no debe contener usuario ni contraseña: use mqtt.username y mqtt.password ({password_hint})",
                        f"must not contain a user or password: set mqtt.username and mqtt.password ({password_hint})")
    try:
        port = parsed.port
    except ValueError:
        port = -1
    if (parsed.scheme not in ("mqtt", "mqtts") or not parsed.hostname or port in (0, -1)
            or parsed.path not in ("", "/") or parsed.query or parsed.fragment):
        raise bilingual("debe ser mqtt://host:puerto o mqtts://host:puerto (puerto 1-65535, nada después)",
                        "must be mqtt://host:port or mqtts://host:port (port 1-65535, nothing after it)")
    return value
