"""Other planning strategies built on the llmcompiler engine (ReAct, native parallel tool calling).

``planners`` imports ``llmcompiler``; ``llmcompiler`` never imports ``planners``.
"""

__all__: list[str] = []
