"""No credential in plain text: container env values, ConfigMaps, and Secret objects in a render.

Sources: CIS 1.9 section 5.4.1 ("prefer secrets as files over secrets as environment variables"), checkov
CKV_K8S_35 and its secrets framework, kube-linter ``env-var-secret`` (``shared/research/security.md`` K8S-06).
A rendered Secret carries :data:`REDACTED` instead of each value; anything else means a value leaked.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator, Mapping
from typing import Any

from platform_components.policies._core import (
    REDACTED,
    Context,
    PodTemplate,
    Rule,
    as_dict,
    as_list,
    containers,
    join,
    kind_of,
    object_rule,
    pod_rule,
)

Finding = tuple[str, str]

#: Words that mark a credential, matched as whole words of SNAKE_CASE, kebab-case, dotted or camelCase names.
SECRET_WORDS = frozenset(
    {
        "PASSWORD",
        "PASSWD",
        "PASSPHRASE",
        "PWD",
        "SECRET",
        "TOKEN",
        "KEY",
        "APIKEY",
        "CREDENTIAL",
        "CREDENTIALS",
    }
)
# A name whose last word is one of these holds a reference (a file path, a Secret's name), not the value
# itself: MLFLOW_TRACKING_TOKEN_FILE=/var/run/secrets/... is how credentials should travel.
_REFERENCE_SUFFIXES = frozenset({"FILE", "PATH", "DIR", "NAME", "REF"})
_PUBLIC = "PUBLIC"
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")

#: Value patterns that are credentials whatever their key is called.
VALUE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA)[A-Z0-9]{16}\b")),
    ("a private key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")),
    ("a URL with a password", re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:[^/\s@]+@[^\s/]+")),
    (
        "an assignment of a credential",
        # password = hunter2 / "secret_key": "abc" inside a config file held in a ConfigMap; ${VAR}, $VAR and
        # the redaction marker are references, not values.
        re.compile(
            r"""(?ix)\b[\w.-]*(?:password|passwd|secret|token|api[_-]?key|secret[_-]?key)["']?\s*[:=]\s*
            ["']?(?!\$|<redacted>|["']|\s|$)[^\s"',}]{4,}"""
        ),
    ),
)


def name_words(name: str) -> list[str]:
    """Upper-case words of a variable or key name: ``dbPassword.file`` -> ``['DB', 'PASSWORD', 'FILE']``."""
    return [word.upper() for word in _WORD_SPLIT.split(name) if word]


def looks_like_secret_name(name: str) -> bool:
    """Whether a variable or key name announces a credential (and is not a reference to one)."""
    words = name_words(name)
    if not words or words[-1] in _REFERENCE_SUFFIXES or _PUBLIC in words:
        return False
    return any(word in SECRET_WORDS for word in words)


def secret_value_kind(value: str) -> str | None:
    """What credential ``value`` looks like (e.g. ``a private key``), or None."""
    for description, pattern in VALUE_PATTERNS:
        if pattern.search(value):
            return description
    return None


@pod_rule("SECRET-ENV-PLAINTEXT", "no container env value holds a credential")
def env_plaintext(template: PodTemplate, context: Context) -> Iterator[Finding]:
    for ref in containers(template):
        for index, variable in enumerate(as_list(ref.container.get("env"))):
            variable = as_dict(variable)
            name, value = variable.get("name"), variable.get("value")
            if not isinstance(value, str) or not value or value == REDACTED:
                continue
            path = join(join(join(ref.path, "env"), index), "value")
            fix = (
                "mount the Secret as a file (volume + MLFLOW_..._FILE style path), or at least use "
                "valueFrom.secretKeyRef"
            )
            if isinstance(name, str) and looks_like_secret_name(name):
                yield path, f"container {ref.name!r} sets {name} in plain text; {fix}"
            else:
                kind = secret_value_kind(value)
                if kind:
                    yield path, f"container {ref.name!r} env {name} holds {kind} in plain text; {fix}"


@object_rule("SECRET-CONFIGMAP-PLAINTEXT", "no ConfigMap key or value holds a credential")
def configmap_plaintext(obj: Mapping[str, Any], context: Context) -> Iterator[Finding]:
    if kind_of(obj) != "ConfigMap":
        return
    fix = "move it to a Secret and mount that as a file"
    for field in ("data", "binaryData"):
        for key, value in as_dict(obj.get(field)).items():
            path = join(field, str(key))
            if looks_like_secret_name(str(key)) and value not in (None, "", REDACTED):
                yield path, f"ConfigMap key {key!r} looks like a credential; {fix}"
                continue
            if isinstance(value, str) and field == "data":
                kind = secret_value_kind(value)
                if kind:
                    yield path, f"ConfigMap value of {key!r} contains {kind}; {fix}"


_REDACTED_B64 = base64.b64encode(REDACTED.encode()).decode()


@object_rule("SECRET-PLAINTEXT-VALUE", f"rendered Secrets carry {REDACTED} instead of values")
def secret_values(obj: Mapping[str, Any], context: Context) -> Iterator[Finding]:
    if kind_of(obj) != "Secret":
        return
    for key, value in as_dict(obj.get("stringData")).items():
        if value not in ("", REDACTED):
            yield (
                join("stringData", str(key)),
                f"Secret stringData {key!r} holds a plain-text value; the render must write {REDACTED!r} "
                "(take the value from a Pulumi secret, never from a literal)",
            )
    for key, value in as_dict(obj.get("data")).items():
        if value not in ("", REDACTED, _REDACTED_B64):
            yield (
                join("data", str(key)),
                f"Secret data {key!r} holds a (base64) value; the render must write {REDACTED!r}",
            )


RULES: tuple[Rule, ...] = (env_plaintext, configmap_plaintext, secret_values)
