"""Ground-truth data and process harnesses for the tests, the demo and the benchmark."""
