"""What the SDK-backed adapters (``OpenAIChat``, ``AnthropicChat``) share.

Their options and their checks, the key and base URL read from the environment, one SDK
client per event loop, opening a stream, and turning SDK errors into one-line ``ModelError``s.
The two SDKs have the same shape (an async client taking ``api_key``, ``base_url``,
``max_retries`` and ``timeout``; parallel exception trees), so one ``SdkProvider`` says all
that differs.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any, Generic, Protocol, Self, TypeVar

from llmcompiler._errors import ModelError, UserError
from llmcompiler.models._clients import LoopClients
from llmcompiler.models._failures import CallSite, is_transport_error, sdk_failure, stream_cut

__all__ = ["NO_KEY", "SdkChat", "SdkProvider"]

NO_KEY = "llmcompiler-no-key"
"""The key sent to a compatible server when none is set (local servers need none)."""


class _Client(Protocol):
    async def close(self) -> None: ...


C = TypeVar("C", bound=_Client)


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class SdkProvider(Generic[C]):
    """What differs between the SDK-backed adapters.

    Attributes:
        name: the provider, as in ``ModelError``s and model names (``"openai"``).
        chat: the adapter's class name, as in its ``repr`` and messages (``"OpenAIChat"``).
        example_model: a model id for the "needs a model name" message.
        key_env: the environment variable of the API key.
        base_url_env: the environment variable of the base URL.
        default_host: the host called when no base URL is set.
        reserved: request parameters the adapter sets itself (refused in ``**params``).
        sdk: the SDK module (its ``APITimeoutError``, ``APIConnectionError``, ``APIStatusError``).
        error: the root of the SDK's exceptions.
        client: the SDK's async client class.
        no_key_hint: said after "set ``key_env`` or pass api_key=" when no key is found.
    """

    name: str
    chat: str
    example_model: str
    key_env: str
    base_url_env: str
    default_host: str
    reserved: frozenset[str]
    sdk: ModuleType
    error: type[Exception]
    client: Callable[..., C]
    no_key_hint: str = ""


class SdkChat(Generic[C]):
    """The shared part of an SDK-backed chat model: options, key, clients, errors.

    Args:
        provider: what differs between the adapters.
        model: the model id.
        base_url: another endpoint; default the ``provider.base_url_env`` variable.
        api_key: default the ``provider.key_env`` variable; with a base URL and no key ``NO_KEY`` is sent.
        max_retries: retries of a failed request.
        timeout: seconds per request.
        params: more request parameters.
        problems: the adapter's own option errors, reported after a missing model name.

    Raises:
        UserError: no API key and no base URL, or a bad option.
    """

    def __init__(
        self,
        provider: SdkProvider[C],
        model: str,
        *,
        base_url: str | None,
        api_key: str | None,
        max_retries: int,
        timeout: float,
        params: dict[str, Any],
        problems: Sequence[str] = (),
    ) -> None:
        if not model:
            raise UserError(f"{provider.chat} needs a model name, e.g. {provider.chat}({provider.example_model!r})")
        if problems:
            raise UserError(problems[0])
        if max_retries < 0:
            raise UserError(f"max_retries must be 0 or more, got {max_retries}")
        if timeout <= 0:
            raise UserError(f"timeout must be positive, got {timeout}")
        clash = sorted(provider.reserved & params.keys())
        if clash:
            raise UserError(f"{provider.chat} sets {', '.join(clash)} itself; do not pass them as parameters")
        base = base_url or os.environ.get(provider.base_url_env) or None
        key = api_key or os.environ.get(provider.key_env) or None
        if key is None:
            if base is None:
                raise UserError(
                    f"{provider.name}:{model} needs an API key: set {provider.key_env} or pass api_key="
                    f"{provider.no_key_hint}"
                )
            key = NO_KEY
        self._provider = provider
        self.model = model
        self.base_url = base
        self.max_retries = max_retries
        self.timeout = timeout
        self.params = params
        self._key = key
        self._clients: LoopClients[C] = LoopClients(self._make_client, _close)

    def __repr__(self) -> str:
        where = f", base_url={self.base_url!r}" if self.base_url else ""
        return f"{self._provider.chat}({self.model!r}{where})"

    def _make_client(self) -> C:
        return self._provider.client(
            api_key=self._key,
            base_url=self.base_url,
            max_retries=self.max_retries,
            timeout=self.timeout,
        )

    async def aclose(self) -> None:
        """Close the running loop's HTTP client (a later call opens a new one)."""
        await self._clients.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _open(self, endpoint: Callable[[C], Any], body: Mapping[str, Any]) -> Any:
        """Send ``body`` to ``endpoint(client).create`` and return the SDK's stream.

        Raises:
            ModelError: the call failed after its retries.
        """
        client = await self._clients.get()
        # Errors are raised outside the ``except`` blocks: the SDK's exception (whose text may
        # quote the key back) must not ride along as ``__context__``.
        failure: ModelError | None = None
        # Parameters go as ``extra_body``: SDK versions differ in the keywords ``create`` accepts.
        core = {k: v for k, v in body.items() if k not in self.params}
        try:
            response = await endpoint(client).create(**core, extra_body=dict(self.params) or None)
        except self._provider.error as exc:
            failure = self._error(exc, started=False)
        if failure is not None:
            raise failure
        return response

    def _stream_failure(self, exc: Exception) -> ModelError | None:
        """What an exception raised while streaming means: an SDK error, a transport error the
        SDK let through, or (``None``) neither, to be raised as it is."""
        if isinstance(exc, self._provider.error):
            return self._error(exc, started=True)
        if is_transport_error(exc):
            return stream_cut(self._site(), exc)
        return None

    def _site(self) -> CallSite:
        return CallSite(
            provider=self._provider.name,
            model=self.model,
            key=self._key,
            timeout=self.timeout,
            max_retries=self.max_retries,
            where=self.base_url or self._provider.default_host,
            key_env=self._provider.key_env,
            base_url_env=self._provider.base_url_env,
        )

    def _error(self, exc: Exception, *, started: bool) -> ModelError:
        return sdk_failure(self._site(), exc, self._provider.sdk, started=started)


async def _close(client: _Client) -> None:
    await client.close()
