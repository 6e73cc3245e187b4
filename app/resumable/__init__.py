"""Resumable uploads without HTTP: the engine (uploads.py) takes a byte stream, a
declared length and a cut-off signal from the protocol adapters in
app/features/resumable; its state in the catalog (store.py); where unfinished bytes
wait (partials/) and who may append (locker.py), chosen together in backends.py."""
