"""The screens: one package per URL noun, each an HTTP adapter over the engines
(urls.py, handlers.py, views.py, and data.py or panel.py for what other screens may
use of it). A feature imports another feature only through its urls, data or panel."""
