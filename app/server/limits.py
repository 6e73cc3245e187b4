"""The process's open-file limit, and the connection cap that follows from it.

Every connection is a file descriptor, and an upload in progress holds a second one
(its temp file); SQLite, the listening socket and the blob store need a few more.
A server started by systemd usually gets a soft limit of 1,024 whatever the hard
limit allows, so the soft limit is raised to the hard one at start.
"""

import resource

# Descriptors kept aside for the catalog, the listener, logs and downloads in flight.
RESERVED_FILES = 64


def raise_open_file_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit where allowed; (soft, hard) after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard
        if hard == resource.RLIM_INFINITY:
            target = 1_048_576  # Linux's usual ceiling (fs.nr_open)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft, hard


def connections_for(open_files: int) -> int:
    """How many connections fit in `open_files` descriptors: two each, less a reserve."""
    return max(1, (open_files - RESERVED_FILES) // 2)


def per_address_for(max_connections: int) -> int:
    """One address may hold an eighth of all connections: a single client cannot take
    them all, while a busy office behind one NAT address still gets plenty."""
    return max(8, max_connections // 8)
