"""One report model, one JSON Schema, one renderer module per output format."""
