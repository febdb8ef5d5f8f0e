class ConfigError(ValueError):
    """A kind's configuration is wrong. `path` names the place, e.g. ``rules[3].condition``;
    forms and the API show the message next to that field."""

    def __init__(self, path: str, problem: str):
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")
