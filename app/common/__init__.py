"""What every screen shares, with no engine below it: JSON answers and body reading
(http.py), small forms (forms.py), the page shell (shell.py), live pages' shared
repaints (livefeeds.py), sizes in words (units.py). Imports only stario and
app.config; everything may import it."""
