"""The benchmarks' building blocks: config generation, runs and reports; benchmarks/*.py are the entry points."""
