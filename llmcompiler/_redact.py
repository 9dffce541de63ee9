"""Secrets out of any text shown or kept: prompts, errors, traces, timelines, the terminal.

``scrub`` is the one redaction every module uses. It replaces with ``[redacted]``:

- the values of environment variables named like secrets (``OPENAI_API_KEY``, ``HF_TOKEN``,
  ``AWS_SECRET_ACCESS_KEY``, ``DB_PASSWORD``, ...; values of 8 characters or more), as written
  and as they read once quoted in JSON or a URL;
- ``api_key=``, ``access_token=``, ``password=``, ``secret=`` values, also with ``:`` when
  the name or the value is quoted (JSON, a dict's repr: ``api_key: str`` in a tool's signature
  is not a secret), any ``...token=`` value, and ``key=`` in a URL's query (``key`` alone
  elsewhere is too common a word: ``{"key": "Oslo"}`` stays); prose naming the parameter stays
  too: after a space, a bracket or a short lowercase word is not a value (``pass api_key= (or set
  OPENAI_API_KEY)``, ``api_key= or``), while ``api_key=or`` and ``password = hunter2`` are;
- ``Authorization:`` header values (after a scheme, or token-shaped) and bearer tokens
  (token-shaped: a digit or one of ``-._~+/=`` in the word; "the bearer of the torch" stays);
- strings shaped like provider keys (``sk-...``, ``ghp_...``, ``AKIA...``, ...).

The environment's secrets are read once and read again only when ``os.environ`` changes, so
scrubbing many strings (a trace of 10,000 tasks) costs time linear in their length.
``redact`` is the narrower pass the model adapters apply to provider errors.

Structured values (a trace's arguments and results) are scrubbed string by string, keys
included; a mapping's value under a secret's name (``password``, ``api_key``, ``token``, ...)
is replaced whole (``is_secret_entry``): alone, it would not be seen beside its name.
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from collections.abc import Callable, Iterable

__all__ = ["REDACTED", "is_secret_entry", "is_secret_name", "redact", "scrub", "scrubber"]

REDACTED = "[redacted]"

# Shapes of provider keys, in case a server echoes one back in an error body: OpenAI and
# Anthropic (sk-), GitHub (ghp_, github_pat_), Slack (xox?-), AWS access keys, Google, Hugging Face.
_KEY_SHAPES = re.compile(
    r"\bsk-[A-Za-z0-9_\-*.]{6,}"
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}"
    r"|\bgithub_pat_[A-Za-z0-9_]{20,}"
    r"|\bxox[abprs]-[A-Za-z0-9-]{10,}"
    r"|\bAKIA[0-9A-Z]{16}\b"
    r"|\bAIza[0-9A-Za-z_\-]{30,}"
    r"|\bhf_[A-Za-z0-9]{20,}"
)
# A bearer token ends at white space, a quote or punctuation that closes or separates ("Bearer sk-abc)").
# Only a token-shaped word counts (a digit or one of - . _ ~ + / = in it, as every token format
# has): "the bearer of the torch" is prose, and questions are scrubbed before they are sent.
_TOKEN_LIKE = r"""(?=[^\s"'),;]*[\d\-._~+/=])[^\s"'),;]+"""
_BEARER = re.compile(r"(?i)(bearer\s+)" + _TOKEN_LIKE)
# Names whose value is a secret, and what a value is (it ends at white space, a quote or a separator).
# Prefixes are bounded ({0,40}): an unbounded [\w-]* rescans every long run of word characters
# (a base64 blob, "token-token-...") from each position, which is quadratic.
_NAMES = r"""(?:
      \b[\w-]{0,40}api[_-]?key
    | \b[\w-]{0,40}(?:access|auth|refresh|id|session|bearer)[_-]?token
    | \b[\w-]{0,40}secret(?:[_-]?(?:access[_-]?)?key)?
    | \b[\w-]{0,40}passw(?:or)?d | \bpwd
    | \bclient[_-]?secret
)"""
# A value: up to its closing quote when it opened with one (it may hold spaces and escaped
# quotes), else up to white space, a quote or a separator.
_VALUE = r"""(?:\[redacted\]|(?<=")(?:[^"\\\n]|\\.)*(?=")|(?<=')(?:[^'\\\n]|\\.)*(?=')|[^\s"',;}&)\]>]+)"""
# "Authorization: Basic abc", "X-Api-Key: abc", '"authorization": "Bearer abc"'.
_HEADER = re.compile(
    r"""(?ix)
    ( \b(?:proxy-)?authorization | \bx-api-key )
    ( ["']?\s*[:=]\s*["']? )
    (?: (?:bearer|basic|token|digest)\s+"""
    + _VALUE
    + r""" | """
    + _TOKEN_LIKE
    + r""" )"""
)
# What cannot be a secret after a space: prose naming the parameter ("pass api_key= (or set
# OPENAI_API_KEY)", "check api_key= or the environment"). An unquoted value set apart from its
# "=" or ":" by a space is not taken when it opens with a bracket or is a short lowercase word;
# one written right after the "=" (api_key=or) and any quoted one always are. A value never
# starts on the next line ("api_key=" at a line's end names the parameter).
_NOT_A_VALUE = r"""(?! (?<=[ \t]) (?: [(\[{<] | (?-i:[a-z]{1,5}) (?![^\s"',;}&)\]>]) ) )"""
# Assignments and query parameters: "password=hunter2", "?api_key=abc", "&token=abc", "?key=abc".
_ASSIGNED = re.compile(
    r"""(?ix)
    ( """
    + _NAMES
    + r""" | \b[\w-]{0,40}token | (?<=[?&;])(?:key|sig|signature) )
    ( ["']?[ \t]*=[ \t]*["']? )"""
    + _NOT_A_VALUE
    + _VALUE
)
# JSON, a dict's repr or YAML with quotes: '"api_key": "abc"', "{'password': 'x'}", 'password: "x"'.
# A name and a value with no quote at all ("api_key: the key to use", "api_key: str" in a tool's
# signature) is prose, not a secret.
_QUOTED = re.compile(
    r"""(?ix)
    ( ["'](?:"""
    + _NAMES
    + r"""|[\w-]{0,40}token)["']\s*:\s*["']? | """
    + _NAMES
    + r"""\s*:\s*["'] )"""
    + _NOT_A_VALUE
    + _VALUE
)
# What every pattern above needs somewhere in the text: one search rules most texts out.
# Matched against the lowered text: a case-insensitive pattern is ten times slower.
_TRIGGER = re.compile(r"bearer|sk-|gh[pousr]_|github_pat_|xox|akia|aiza|hf_|author|key|token|secret|passw|pwd|sig")
# Environment variables whose values are secrets: OPENAI_API_KEY, HF_TOKEN, AWS_SECRET_ACCESS_KEY, ...
_SECRET_ENV = re.compile(r"(?i)(API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?|PRIVATE_?KEY)")
_MIN_SECRET = 8  # shorter environment values ("1", "true") are not treated as secrets
# Text shorter than this holds no key shape, bearer token, assignment or environment secret.
_SHORTEST = 8
# A scrubber remembers its answers for short texts only, and for a bounded number of them.
_MEMO_CHARS = 256
_MEMO_ENTRIES = 4096


_SECRET_NAME = re.compile(r"(?ix)^(?:" + _NAMES + r"|[\w-]{0,40}token|authorization|x-api-key)$")


def is_secret_name(name: object) -> bool:
    """Whether a mapping key names a secret (``password``, ``api_key``, ``token``, ...), so that
    its value is redacted whatever it looks like.

    Example:
        >>> is_secret_name("DB_Password"), is_secret_name("max_tokens")
        (True, False)
    """
    return isinstance(name, str) and len(name) <= 60 and _SECRET_NAME.match(name) is not None


def is_secret_entry(name: object, value: object) -> bool:
    """Whether a mapping's ``value`` under ``name`` is a secret whatever it looks like, to be
    replaced whole by ``REDACTED``: a value (``None`` is none) under a secret's name.

    Example:
        >>> is_secret_entry("password", "hunter2"), is_secret_entry("password", None), is_secret_entry("city", "Oslo")
        (True, False, False)
    """
    return value is not None and is_secret_name(name)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with the given secrets, bearer tokens and key-shaped strings replaced.

    Example:
        >>> redact("refused (Authorization: Bearer abc123def456)")
        'refused (Authorization: Bearer [redacted])'
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    text = _BEARER.sub(r"\1" + REDACTED, text)
    return _KEY_SHAPES.sub(REDACTED, text)


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every secret replaced by ``[redacted]`` (see the module's list).

    Args:
        text: any text.
        secrets: more strings to replace (keys the environment does not hold).

    Example:
        >>> scrub("failed: Authorization: Bearer abc123def456 (key sk-proj-abcdefgh)")
        'failed: Authorization: [redacted] (key [redacted])'
        >>> scrub("GET https://api.example.com/v1?api_key=abc123&q=1")
        'GET https://api.example.com/v1?api_key=[redacted]&q=1'
    """
    extra = [s for s in secrets if s]
    if extra:
        return scrubber(extra)(text)
    return _env_scrubber()(text)


def scrubber(secrets: Iterable[str | None] = ()) -> Callable[[str], str]:
    """A ``scrub`` with the environment read once and ``secrets`` fixed: for scrubbing many strings.

    The function it returns remembers what it gave for each text, so repeated strings (tool
    names, states) cost one look-up.
    """
    literal = _literal_pattern([*(s for s in secrets if s), *_env_secrets()])
    done: dict[str, str] = {}

    def apply(text: str) -> str:
        if len(text) < _SHORTEST and literal is None:
            return text
        if len(text) > _MEMO_CHARS:
            return _scrub_with(text, literal)
        cached = done.get(text)
        if cached is None:
            cached = _scrub_with(text, literal)
            if len(done) >= _MEMO_ENTRIES:
                done.clear()
            done[text] = cached
        return cached

    return apply


def _scrub_with(text: str, literal: re.Pattern[str] | None) -> str:
    if literal is not None:
        text = literal.sub(REDACTED, text)
    if len(text) < _SHORTEST or _TRIGGER.search(text.lower()) is None:
        return text
    text = _BEARER.sub(r"\1" + REDACTED, text)
    text = _KEY_SHAPES.sub(REDACTED, text)
    text = _HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _ASSIGNED.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return _QUOTED.sub(lambda m: f"{m.group(1)}{REDACTED}", text)


def _literal_pattern(secrets: Iterable[str]) -> re.Pattern[str] | None:
    """One pattern for every secret as written and as quoted in JSON, a ``repr`` or a URL, longest first."""
    forms: set[str] = set()
    for secret in secrets:
        forms.add(secret)
        forms.add(json.dumps(secret)[1:-1])
        forms.add(json.dumps(secret, ensure_ascii=False)[1:-1])
        forms.add(repr(secret)[1:-1])
        forms.add(urllib.parse.quote(secret, safe=""))
        forms.add(urllib.parse.quote_plus(secret, safe=""))
    forms.discard("")
    if not forms:
        return None
    return re.compile("|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)))


def _env_secrets() -> list[str]:
    return [
        value
        for name, value in os.environ.items()
        if _SECRET_ENV.search(name) and len(value) >= _MIN_SECRET and not value.isdigit()
    ]


def _env_fingerprint() -> tuple[object, ...]:
    """What changes whenever ``os.environ`` does, cheaply: its stored keys and values themselves.

    ``os.environ`` keeps its data in a dict whose values are replaced (never mutated) on every
    change, so comparing with an earlier snapshot is mostly identity checks.
    """
    data = getattr(os.environ, "_data", None)
    if isinstance(data, dict):
        return (*data.keys(), *data.values())
    return tuple(os.environ.items())  # pragma: no cover - every CPython has os.environ._data


_cached: tuple[tuple[object, ...], Callable[[str], str]] | None = None


def _env_scrubber() -> Callable[[str], str]:
    """The scrubber for the current environment, made again only when the environment changed."""
    global _cached
    fingerprint = _env_fingerprint()
    if _cached is None or _cached[0] != fingerprint:
        _cached = (fingerprint, scrubber())
    return _cached[1]
