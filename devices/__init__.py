"""Board tooling: profiles (``*.toml``), install recipes, the arm64 emulation and ``python -m devices``."""
