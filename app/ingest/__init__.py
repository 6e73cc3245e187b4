"""How bytes become stored files: the intake every upload ends in (intake.py: where
it goes, its quota, the room check, the recording), the one pipeline every
single-request transport feeds (pipeline.py, with multipart.py and signals.py), and
what they share (names, sniffing, progress, the memory budget). An engine: it takes
byte streams, lengths and names, never a request, so it imports neither stario's
`Context`/`Writer` nor `app.features` nor `app.server`."""
