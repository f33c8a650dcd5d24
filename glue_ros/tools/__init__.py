"""Command-line tools that share the matcher API with the node."""
