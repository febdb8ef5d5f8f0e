"""Agent kinds: one module per kind, all behind the interface in `agents.kinds.base`."""
