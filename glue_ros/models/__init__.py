"""Our own PyTorch networks: feature extractors and matchers."""
