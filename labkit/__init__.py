"""labkit: the Foundation Model Lab library."""
