"""How the provider adapters report failures: one line each, naming what to do, secrets redacted.

The openai and anthropic SDKs raise parallel exception trees (``APITimeoutError``,
``APIConnectionError``, ``APIStatusError``); ``sdk_failure`` reads either.
"""

from __future__ import annotations

import dataclasses
from types import ModuleType

from llmcompiler._errors import ModelError
from llmcompiler._redact import scrub
from llmcompiler._text import one_line

__all__ = ["CallSite", "is_transport_error", "one_line", "sdk_failure", "status_hint", "stream_cut"]


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class CallSite:
    """What an error message needs to know about the adapter that failed.

    Attributes:
        provider: ``"openai"`` or ``"anthropic"``.
        model: the model id.
        key: the API key in use (only ever removed from messages).
        timeout: seconds per attempt.
        max_retries: retries the SDK makes.
        where: the host called, for "cannot reach ..." messages.
        key_env: the environment variable of the key.
        base_url_env: the environment variable of the base URL.
    """

    provider: str
    model: str
    key: str | None
    timeout: float
    max_retries: int
    where: str
    key_env: str
    base_url_env: str


def stream_cut(site: CallSite, exc: Exception) -> ModelError:
    """A transport error the SDK let through while streaming."""
    if "timeout" in type(exc).__name__.lower():
        return _stalled(site)
    detail = one_line(scrub(f"{type(exc).__name__}: {exc}", [site.key]), 160)
    return ModelError(
        site.provider, f"{site.model}: the stream was cut before its end ({detail}); the reply is incomplete"
    )


def sdk_failure(site: CallSite, exc: Exception, sdk: ModuleType, *, started: bool) -> ModelError:
    """An SDK exception as a ``ModelError``; ``started`` says whether the reply had begun streaming."""
    if isinstance(exc, sdk.APITimeoutError):
        if started:
            return _stalled(site)
        return ModelError(
            site.provider,
            f"{site.model}: timed out after {site.timeout:g}s per attempt and {site.max_retries} retries; "
            "raise timeout= or max_retries=",
        )
    if isinstance(exc, sdk.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        detail = one_line(scrub(str(cause or exc), [site.key]), 160)
        if started:
            return ModelError(
                site.provider, f"{site.model}: the stream was cut before its end ({detail}); the reply is incomplete"
            )
        return ModelError(
            site.provider,
            f"{site.model}: cannot reach {site.where} ({detail}) after {site.max_retries} retries; "
            f"check base_url= or {site.base_url_env}",
        )
    if isinstance(exc, sdk.APIStatusError):
        detail = one_line(scrub(exc.message, [site.key]))
        if started:  # an error event inside a 200 stream (e.g. Anthropic's overloaded_error)
            return ModelError(site.provider, f"{site.model}: the stream reported an error: {detail}")
        return ModelError(
            site.provider,
            f"{site.model}: {status_hint(exc.status_code, site.key_env)}: {detail}",
            status=exc.status_code,
        )
    detail = one_line(scrub(str(exc), [site.key]))
    return ModelError(site.provider, f"{site.model}: {'the stream failed: ' if started else ''}{detail}")


def _stalled(site: CallSite) -> ModelError:
    return ModelError(
        site.provider, f"{site.model}: the stream stalled for {site.timeout:g}s before its end; the reply is incomplete"
    )


_TRANSPORT_MODULES = frozenset({"httpx", "httpx2", "httpcore", "httpcore2", "h11", "h2", "anyio"})


def is_transport_error(exc: BaseException) -> bool:
    """Whether ``exc`` is the HTTP stack's own error (a dropped connection, a read timeout)
    that an SDK let through unwrapped while streaming."""
    return isinstance(exc, OSError) or type(exc).__module__.split(".")[0] in _TRANSPORT_MODULES


def status_hint(status: int, key_env: str) -> str:
    """What to do about an HTTP error status."""
    if status == 401:
        return f"the API key was refused: check {key_env} or api_key="
    if status == 403:
        return "the API key may not use this model or endpoint"
    if status == 404:
        return "unknown model or endpoint: check the model name and base_url"
    if status == 429:
        return "rate limited, and retries ran out: raise max_retries= or slow down"
    if status >= 500:
        return "the server failed, and retries ran out: raise max_retries= or try later"
    return "the request was refused"
