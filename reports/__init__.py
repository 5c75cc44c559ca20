"""Report renderers and run comparison (issue 5)."""
