"""The run engine. Public entry points: `start`, `cancel`, `resolve`, `execute_step`."""
