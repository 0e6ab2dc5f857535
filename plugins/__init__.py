"""kqa's built-in plugins, installed as the ``kqa_plugins`` package and registered through the
``kqa`` entry-point group in ``pyproject.toml`` exactly as a third-party plugin would be."""
