"""gradflow's benchmark suite: gradflow against hand-written NumPy, PyTorch and JAX.

``python -m benchmarks.run`` runs every workload and prints the table (see README.md);
``python -m pytest benchmarks --benchmark-enable`` runs the pytest-benchmark cases.
"""
