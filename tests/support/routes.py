"""Every route the app registers, read from its route tree (the fuzz and the access
matrix both walk it)."""


def app_routes(app) -> list[tuple[str, str]]:
    """(method, pattern) of every route the app serves, from Stario's route tree (it has
    no public listing), so that a new endpoint is fuzzed without being named here."""
    found: list[tuple[str, str]] = []
    pending = [app._path]
    while pending:
        node = pending.pop()
        for method, endpoint in (node.endpoints or {}).items():
            found.append((method, endpoint.route.target.split(" ", 1)[-1]))
        pending.extend(node.exact.values())
        pending.extend(n for n in (node.wildcard, node.catchall) if n is not None)
    return sorted(found)
