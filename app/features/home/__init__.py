"""The page a person lives in: / and its live stream /live, with every screen's panel."""
