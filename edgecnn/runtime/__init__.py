"""edgecnn.runtime."""
