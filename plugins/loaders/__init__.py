"""Knowledge-graph format loaders (one plugin module per format family)."""
