"""Direct uploads' JSON API: sessions whose bytes go from the client to the bucket."""
