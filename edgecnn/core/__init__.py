"""edgecnn.core."""
