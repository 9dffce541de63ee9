"""Real token counts: the tokenizers the benchmark's model profiles stand for, and how a request is charged.

Two counters, each a real tokenizer that works offline:

- ``"o200k_base"``: the GPT-4o family's byte-pair encoding, from the ``bpe-openai`` package
  (``bpe_openai.encoding_for_model("gpt-4o")``; it embeds its vocabulary, where ``tiktoken``
  downloads its files at first use). The ``gpt-4o`` and ``instant`` profiles count with it.
- ``"gemma3"``: the local Gemma 3 270M's own vocabulary, read from its GGUF file by llama.cpp
  (``llama_cpp.Llama(..., vocab_only=True)``: the vocabulary, no weights). The ``local``
  profile counts with it, as its measured speeds are in these tokens.

A counter is loaded on first use and kept for the process (about a second each).

How a request is charged (``prompt_tokens``), the same way for every system, with one tokenizer:

- **Messages**, as OpenAI's cookbook counts them ("How to count tokens with tiktoken",
  ``num_tokens_from_messages``): each message costs 3 tokens of framing plus the tokens of its
  role and its content, and 3 more prime the reply (``<|start|>assistant<|message|>``). The
  native tool calls an assistant message carries cost what ``call_tokens`` says (their ids are
  not counted: the provider frames calls its own way, which is not published).
- **Native tool definitions** (``request.native_tools``), as the same cookbook counts them
  (``num_tokens_for_tools``, its constants for gpt-4o and gpt-4o-mini): the provider does not
  send the JSON schema to the model but renders each function as a few lines of text (its name
  and description, then one line per parameter: name, type, description), so the cookbook
  charges the tokens of those lines plus fixed framing: 7 per function, 3 for its parameter
  block, 3 per parameter, -3 for an enum plus 3 and the value's tokens per enum value, and 12
  once for the whole tool block. The cookbook fits these constants to the ``prompt_tokens`` the
  API reports (101 = 101 for gpt-4o on its worked example, reproduced by this package's tests).
  Counting the raw JSON schema instead, as these benchmarks once did, charges braces, quotes
  and ``"type": "object"`` that the model never reads. A parameter's type is its JSON Schema
  ``type`` word, as the cookbook writes it; a union (a list of types, ``anyOf``, ``oneOf``) is
  written ``a | b``; nested objects and array items are charged as their type word only, as the
  cookbook does (the suites' parameters are flat: strings, numbers, booleans, enums, arrays of
  scalars). The ``gemma3`` counter applies the same rule with its own tokenizer: the local model
  has no native tool format, so the native baseline under the local profile is charged what a
  provider like OpenAI would charge, in Gemma's tokens.
- **Tools listed as text**: LLMCompiler's planner prompt and ReAct's prompt describe the tools
  in their own text; that text is a message and is counted as the text it is. Every system thus
  pays for its tool definitions on every request that carries them, in whatever form it sends them.

A native tool call as completion tokens (``call_tokens``) is its name plus its arguments as
compact JSON (``{"city":"Oslo"}``, as GPT-4o writes them); the framing a provider adds around
calls is not published and not counted, which if anything flatters native calling.
"""

from __future__ import annotations

import atexit
import functools
import importlib
import json
import re
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from llmcompiler import ModelRequest, ToolCall, ToolSpec
from llmcompiler._types import deref_schema

__all__ = [
    "COUNTERS",
    "TokenCounter",
    "call_tokens",
    "completion_tokens",
    "prompt_tokens",
    "token_counter",
    "tool_definition_tokens",
]

COUNTERS: tuple[str, ...] = ("o200k_base", "gemma3")
"""The counters ``token_counter`` knows."""

# The cookbook's per-message framing: 3 tokens a message (<|start|>{role}<|message|>, the role
# itself counted as text), and 3 to prime the reply.
TOKENS_PER_MESSAGE = 3
REPLY_PRIMING_TOKENS = 3

# The cookbook's tool-definition constants for gpt-4o and gpt-4o-mini (num_tokens_for_tools).
FUNC_INIT = 7
PROP_INIT = 3
PROP_KEY = 3
ENUM_INIT = -3
ENUM_ITEM = 3
FUNC_END = 12

_CHUNK_CHARS = 100_000  # longer texts are tokenized in slices (bpe-openai refuses 1M characters)
_SURROGATE = re.compile("[\ud800-\udfff]")


class TokenCounter:
    """One real tokenizer: counts text and cuts it at token boundaries.

    Made by ``token_counter``; ``encode`` and ``token_bytes`` are the tokenizer's own.

    Args:
        name: the counter's name (``"o200k_base"``, ``"gemma3"``).
        encode: text to token ids (no special tokens: text that looks like one is text).
        token_bytes: the bytes of one token id.

    Attributes:
        name: the counter's name.
    """

    def __init__(self, name: str, encode: Callable[[str], list[int]], token_bytes: Callable[[int], bytes]) -> None:
        self.name = name
        self._encode = encode
        self._token_bytes = token_bytes
        self._lock = threading.Lock()  # llama.cpp's tokenizer is not documented as thread-safe
        self._count = functools.lru_cache(maxsize=4096)(self._count_uncached)  # prompts repeat

    def __repr__(self) -> str:
        return f"TokenCounter({self.name!r})"

    def _ids(self, text: str) -> list[int]:
        # A lone surrogate (JSON may hold one) cannot be UTF-8: counted as U+FFFD, as tiktoken does.
        text = _SURROGATE.sub("\ufffd", text)
        ids: list[int] = []
        with self._lock:
            for start in range(0, len(text), _CHUNK_CHARS):
                ids += self._encode(text[start : start + _CHUNK_CHARS])
        return ids

    def _count_uncached(self, text: str) -> int:
        return len(self._ids(text))

    def count(self, text: str) -> int:
        """The number of tokens of ``text``."""
        return self._count(text) if text else 0

    def timed_pieces(self, text: str) -> list[tuple[str, int]]:
        """``text`` cut at token boundaries, each piece with the number of tokens up to its end.

        A token that ends inside a UTF-8 character (an emoji, a rare letter written as single
        bytes) is merged with the tokens after it until the character is complete, so a piece
        may hold several tokens; its number is its last token's. The last number is
        ``count(text)``.
        """
        ids = self._ids(text)
        with self._lock:
            chunks = [self._token_bytes(i) for i in ids]
        out: list[tuple[str, int]] = []
        buffer = b""
        at = 0  # characters of text consumed
        for k, chunk in enumerate(chunks, 1):
            buffer += chunk
            try:
                decoded = buffer.decode("utf-8")
            except UnicodeDecodeError:
                continue  # inside a character: wait for its next bytes
            # Slice the original text (lone surrogates were counted as one U+FFFD character each).
            out.append((text[at : at + len(decoded)], k))
            at += len(decoded)
            buffer = b""
        if at != len(text) or buffer:
            # The tokenizer's bytes did not spell the text (never seen): one piece, honest count.
            return [(text, len(ids))] if text else []
        return out

    def pieces(self, text: str) -> list[str]:
        """``text`` cut at token boundaries: ``"".join(pieces(text)) == text``.

        A token that splits a UTF-8 character merges into the next piece (see ``timed_pieces``).
        """
        return [piece for piece, _ in self.timed_pieces(text)]


_COUNTERS: dict[str, TokenCounter] = {}
_COUNTERS_LOCK = threading.Lock()


def token_counter(name: str) -> TokenCounter:
    """The counter called ``name`` (one of ``COUNTERS``), loaded on first use and kept for the process.

    Raises:
        ValueError: an unknown name.
        ImportError: its tokenizer's package is not installed (``bpe-openai`` comes with
            ``llmcompiler[bench]``, ``llama-cpp-python`` and the Gemma GGUF with ``llmcompiler[local]``).
    """
    if name not in COUNTERS:
        raise ValueError(f"unknown token counter {name!r}: choose from {', '.join(COUNTERS)}")
    with _COUNTERS_LOCK:
        counter = _COUNTERS.get(name)
        if counter is None:
            counter = _COUNTERS[name] = _o200k() if name == "o200k_base" else _gemma3()
        return counter


def _o200k() -> TokenCounter:
    with warnings.catch_warnings():
        # bpe-openai 0.1.4 reads its vocabularies (at import, and per encoding) with
        # importlib.resources.open_binary, deprecated since Python 3.11.
        warnings.filterwarnings("ignore", message="open_binary is deprecated", category=DeprecationWarning)
        try:
            bpe_openai = importlib.import_module("bpe_openai")
        except ImportError:
            raise ImportError(
                "the o200k_base token counter needs the bpe-openai package: pip install 'llmcompiler[bench]'"
            ) from None
        encoding: Any = bpe_openai.encoding_for_model("gpt-4o")
    return TokenCounter("o200k_base", encoding.encode_ordinary, encoding.decode_single_token_bytes)


def _gemma3() -> TokenCounter:
    from llmcompiler.models._llamacpp import _llama_cpp, default_model_path

    try:
        llama_cpp = _llama_cpp()  # llama.cpp's log lines kept off the terminal
    except ImportError:
        raise ImportError("the gemma3 token counter needs llama-cpp-python: pip install 'llmcompiler[local]'") from None
    vocab: Any = llama_cpp.Llama(model_path=default_model_path(), vocab_only=True, verbose=False)
    atexit.register(vocab.close)  # freed while llama_cpp still exists (at interpreter shutdown it fails)

    def encode(text: str) -> list[int]:
        ids: list[int] = vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        return ids

    def token_bytes(token: int) -> bytes:
        data: bytes = vocab.detokenize([token])
        return data

    return TokenCounter("gemma3", encode, token_bytes)


# --------------------------------------------------------------------------- charging requests


def _without_period(text: str) -> str:
    return text[:-1] if text.endswith(".") else text


def _type_word(prop: Mapping[str, Any]) -> str:
    kind = prop.get("type")
    if isinstance(kind, str):
        return kind
    if isinstance(kind, list) and kind:
        return " | ".join(str(k) for k in kind)
    for key in ("anyOf", "oneOf"):
        members = prop.get(key)
        if isinstance(members, list) and members:
            return " | ".join(_type_word(m) if isinstance(m, Mapping) else "any" for m in members)
    return "any"


def _deref(prop: Any, root: Mapping[str, Any]) -> Mapping[str, Any]:
    # A parameter may be pydantic's {"$ref": "#/$defs/Name"}: what it names is what is rendered.
    return deref_schema(prop, root) if isinstance(prop, Mapping) else {}


def tool_definition_tokens(counter: TokenCounter, tools: Sequence[ToolSpec]) -> int:
    """The prompt tokens of ``tools`` sent as native tool definitions, counted the OpenAI cookbook way.

    ``num_tokens_for_tools`` of "How to count tokens with tiktoken", with its gpt-4o constants:
    per function 7 plus the tokens of ``name:description`` (a final period dropped); if it has
    parameters, 3, then per parameter 3 plus the tokens of ``name:type:description``, and for an
    enum -3 plus, per value, 3 and the value's tokens; 12 once for the whole block. No tools: 0.
    """
    if not tools:
        return 0
    total = 0
    for tool in tools:
        total += FUNC_INIT + counter.count(f"{tool.name}:{_without_period(tool.description)}")
        properties = tool.parameters.get("properties")
        if not isinstance(properties, Mapping) or not properties:
            continue
        total += PROP_INIT
        for key, raw in properties.items():
            prop = _deref(raw, tool.parameters)
            total += PROP_KEY
            if "enum" in prop:
                total += ENUM_INIT
                for item in prop["enum"] if isinstance(prop["enum"], list) else ():
                    total += ENUM_ITEM + counter.count(item if isinstance(item, str) else json.dumps(item))
            description = prop.get("description")
            text = _without_period(description) if isinstance(description, str) else ""
            total += counter.count(f"{key}:{_type_word(prop)}:{text}")
    return total + FUNC_END


def call_tokens(counter: TokenCounter, call: ToolCall) -> int:
    """One native tool call as completion tokens: its name plus its arguments as compact JSON."""
    arguments = json.dumps(dict(call.args), ensure_ascii=False, separators=(",", ":"), default=str)
    return counter.count(call.name) + counter.count(arguments)


def completion_tokens(counter: TokenCounter, reply: str | Sequence[ToolCall]) -> int:
    """The completion tokens of a reply: its text, or its native tool calls (``call_tokens`` each)."""
    if isinstance(reply, str):
        return counter.count(reply)
    return sum(call_tokens(counter, call) for call in reply)


def static_prefix_tokens(counter: TokenCounter, request: ModelRequest) -> int:
    """The tokens of the prefix of ``request`` that is the same for every question: the tool
    definitions when the tools go through native tool calling (a provider puts them first), and
    the system message when the request opens with one, charged as ``prompt_tokens`` charges them.
    ``0`` when neither is there."""
    total = tool_definition_tokens(counter, request.tools) if request.native_tools else 0
    if request.messages and request.messages[0].role == "system":
        first = request.messages[0]
        total += TOKENS_PER_MESSAGE + counter.count(first.role) + counter.count(first.content)
    return total


def prompt_tokens(counter: TokenCounter, request: ModelRequest) -> int:
    """The prompt tokens of ``request`` (see the module's docstring).

    Per message 3 plus its role's and its content's tokens plus its native calls' (``call_tokens``);
    3 to prime the reply; and ``tool_definition_tokens(request.tools)`` when the request offers
    the tools through native tool calling (``request.native_tools``). Tools a prompt lists as
    text are in its messages.
    """
    total = REPLY_PRIMING_TOKENS
    for message in request.messages:
        total += TOKENS_PER_MESSAGE + counter.count(message.role) + counter.count(message.content)
        total += sum(call_tokens(counter, call) for call in message.tool_calls)
    if request.native_tools:
        total += tool_definition_tokens(counter, request.tools)
    return total
