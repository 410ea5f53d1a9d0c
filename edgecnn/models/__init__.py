"""edgecnn.models."""
