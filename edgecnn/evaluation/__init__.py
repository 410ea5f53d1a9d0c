"""edgecnn.evaluation."""
