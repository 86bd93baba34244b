"""What the test suite and the benchmark (`python -m bench`) share: the services they start for
themselves and the way they wait for them.

Nothing here imports Django or the project's apps: the environment these services are given is what
Django is configured from, in this process or in theirs. The benchmark imports this package; the tests
never import the benchmark.
"""
