"""edgecnn.training."""
