"""The controllable clock for timing tests, under the names the tests first gave it.

It now lives in the library as ``llmcompiler.testing.VirtualClockLoop`` and
``llmcompiler.testing.run_virtual`` (an event loop whose time jumps to the next timer
whenever it is idle); these names stay so existing tests keep importing them.
"""

from __future__ import annotations

from llmcompiler.testing import VirtualClockLoop as FakeClockLoop
from llmcompiler.testing import run_virtual as run_with_fake_clock

__all__ = ["FakeClockLoop", "run_with_fake_clock"]
