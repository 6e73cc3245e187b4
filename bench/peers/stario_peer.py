"""The minimal Stario servers Stowage is measured against (runs in the app's venv).

- `PUT /write/{name}`: the body's chunks go to a file with plain `f.write`
  (blocking, on the event loop, no fsync): the framework's upload floor.
- `PUT /discard/{name}`: the body is read and dropped: the loopback limit.
- `GET /files/{path...}`: `stario.Files` on a directory (the download peer).

Same event loop as Stowage (uvloop), no request log (NoOpTracer).

    python bench/peers/stario_peer.py --port P --write-dir D --files-dir F
"""

import argparse
import os
from pathlib import Path

import uvloop
from stario import App, Context, Files, Route, ServerConfig, Span, Writer, serve
from stario.http.config import RequestPolicy
from stario.telemetry.noop import NoOpTracer

MAX_BODY = 2**31 - 1


def make_bootstrap(write_dir: Path, files_dir: Path):
    async def write(c: Context, w: Writer) -> None:
        name = os.path.basename(str(c.match.params["name"]))  # type: ignore[attr-defined]
        size = 0
        with open(write_dir / name, "wb") as f:
            async for chunk in c.req.stream():
                f.write(chunk)
                size += len(chunk)
        w.json({"size": size}, 201)

    async def discard(c: Context, w: Writer) -> None:
        size = 0
        async for chunk in c.req.stream():
            size += len(chunk)
        w.json({"size": size}, 201)

    async def bootstrap(app: App, span: Span):
        app.add(Route("PUT /write/{name}"), write)
        app.add(Route("PUT /discard/{name}"), discard)
        await Files(files_dir, "/files", untrusted=True).attach(app)
        yield

    return bootstrap


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--write-dir", type=Path, required=True)
    parser.add_argument("--files-dir", type=Path, required=True)
    args = parser.parse_args()
    config = ServerConfig(
        host="127.0.0.1",
        port=args.port,
        requests=RequestPolicy(max_body_bytes=MAX_BODY, body_timeout=60),
    )
    with NoOpTracer() as tracer:
        uvloop.run(
            serve(make_bootstrap(args.write_dir, args.files_dir), config=config, tracer=tracer)
        )


if __name__ == "__main__":
    main()
