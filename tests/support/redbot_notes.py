"""Run by REDbot's own Python (tests/server/test_redbot.py makes its venv), never
imported by the suite: checks one URL with REDbot and prints its notes as JSON.

    python redbot_notes.py URL [HEADER-NAME HEADER-VALUE]...

REDbot's command line sends no header of ours (no Authorization, no cookie), so this
drives its `HttpResource` the way its `cli.py` does, with the request's headers.
Prints {"status": ..., "error": ..., "notes": [{"name", "vars", "level", "category",
"summary", "subnotes"}]} (levels: good, warning, bad, info)."""

import json
import sys
from configparser import ConfigParser

import thor
from redbot.resource import HttpResource


def _note(note) -> dict:
    return {
        "name": type(note).__name__,
        "vars": {key: str(value) for key, value in note.vars.items()},
        "level": note.level.value,
        "category": note.category.value,
        "summary": str(note.summary),
        "subnotes": [_note(sub) for sub in note.subnotes],
    }


def main() -> None:
    url, *pairs = sys.argv[1:]
    headers = list(zip(pairs[::2], pairs[1::2], strict=True))
    parser = ConfigParser()
    parser.read_dict({"redbot": {"enable_local_access": "True"}})
    resource = HttpResource(parser["redbot"])
    resource.set_request(url, headers=headers)

    @thor.events.on(resource)
    def check_done() -> None:
        thor.stop()

    resource.check()
    thor.run()
    error = resource.fetch_error
    print(
        json.dumps(
            {
                "status": resource.response.status_code,
                "error": None if error is None else str(error.desc),
                "notes": [_note(note) for note in resource.response.notes],
            }
        )
    )


if __name__ == "__main__":
    main()
