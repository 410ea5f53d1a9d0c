"""edgecnn.exporting."""
