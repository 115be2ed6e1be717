# The benchmarks use the tests' fixtures: a Kinto app per backend and the local Step Functions.
pytest_plugins = ["tests.conftest"]
