"""Making a model small and fast: quantisation (:mod:`.quantize`)."""
