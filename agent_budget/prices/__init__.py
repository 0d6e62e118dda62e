"""Model prices with the structure providers bill by: tiers above a prompt size, cache reads
and writes, reasoning and audio tokens. `agent_budget.pricing.PriceBook` decides which
price applies; the modules here hold the data (`schema`), the token counts a call reports
(`usage`), and LiteLLM's price maps, bundled or pinned (`litellm_map`)."""
