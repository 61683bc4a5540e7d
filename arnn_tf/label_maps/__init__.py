"""Label maps (the output map h_g): specs that name them, and maps computed from the data."""
