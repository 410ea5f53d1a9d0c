"""edgecnn.benchmarking."""
