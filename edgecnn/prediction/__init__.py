"""edgecnn.prediction."""
