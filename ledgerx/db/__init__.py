"""Where each database statement runs: the primary, or a streaming read replica (``replicas``)."""
