"""Keeping a data dir whole: who owns it (lock.py), what is in it (check.py), reclaiming
what a crash left behind (sweep.py), and consistent copies of it (backup.py).

Nothing here knows about URLs; `stowage serve` and the `check`/`backup` commands use it."""
