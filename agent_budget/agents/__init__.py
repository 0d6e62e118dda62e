"""Ready-made agents: LangGraph graphs composed from the capabilities below them (tools,
models, delegation) and the budget building blocks of `integrations/`.

Layer: above `integrations/` (an agent here is a graph under `with_budget`, and reads the live
tracker while it runs), below the entry points (`cli/`, `demos/`, `examples/`,
`benchmarks/`), which only choose a model, a backend and a budget and print.
"""
