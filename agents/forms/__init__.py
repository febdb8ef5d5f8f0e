"""Forms of the agent and connection pages (the editor lives in `definition`)."""
