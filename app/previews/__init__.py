"""Previews: thumbnails derived from stored images, made off the event loop."""
