"""Pages of agents and connections (workflows live in `agents.views.workflows`)."""
