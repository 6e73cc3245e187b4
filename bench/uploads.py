"""Upload suites: raw body (`uploads`), multipart form (`multipart`), Datastar file signals
(`signals`). Every figure is MB/s of file bytes (1 MB = 10^6 bytes), timed by curl."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from bench.harness import (
    MB,
    WORK,
    MiB,
    Pair,
    Server,
    Settings,
    SuiteResult,
    Target,
    Unavailable,
    curl,
    fastapi_peer,
    fresh_dir,
    human_size,
    log,
    random_file,
    remove_files,
    report,
    run_targets,
    stario_peer,
    start_all,
    stop_all,
    stowage,
)

STOWAGE = "Stowage"
STOWAGE_OFF = "Stowage --log off"


def _error_text(body: bytes) -> str:
    try:
        return str(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        return body[:200].decode(errors="replace")


def upload(url: Callable[[], str], size: int, *args: str, reps: int = 1) -> Callable[[], float]:
    """A measurement: `reps` uploads with curl, MB/s of file bytes over their summed time."""

    def measure() -> float:
        seconds = 0.0
        for _ in range(reps):
            t = curl(url(), *args)
            if t.status == 415:
                raise Unavailable(f"HTTP 415: {_error_text(t.body)}")
            if not 200 <= t.status < 300:
                raise RuntimeError(f"{url()} answered {t.status}: {_error_text(t.body)}")
            seconds += t.seconds
        return size * reps / seconds / MB

    return measure


def dd_measure(source: Path, out: Path, size: int) -> Callable[[], float]:
    """The disk's own figure: copy the file with dd and fdatasync at the end."""

    def measure() -> float:
        began = time.perf_counter()
        subprocess.run(
            ["dd", f"if={source}", f"of={out}", "bs=1M", "conv=fdatasync"],
            check=True,
            capture_output=True,
        )
        return size / (time.perf_counter() - began) / MB

    return measure


def _stowage_pair(work: Path) -> tuple[Server, Server, Path, Path]:
    data, data_off = work / "stowage-data", work / "stowage-off-data"
    # As shipped: no --log flag; stdout is a file, so the JSON request log is on.
    shipped = stowage(STOWAGE, data)
    quiet = stowage(STOWAGE_OFF, data_off, "--log", "off")
    return shipped, quiet, data / "uploads", data_off / "uploads"


def run_uploads(settings: Settings) -> None:
    size = 32 * MiB if settings.quick else 256 * MiB
    work = fresh_dir(WORK / "uploads")
    source = random_file(WORK / "files" / f"random-{size}", size)
    shipped, quiet, blobs, blobs_off = _stowage_pair(work)
    peer_out = fresh_dir(work / "stario-out")
    fast_out = fresh_dir(work / "fastapi-out")
    stario = stario_peer("Stario f.write", peer_out, peer_out)
    fast = fastapi_peer("FastAPI stream", fast_out, fast_out, work / "fastapi.db")
    servers = [shipped, quiet, stario, fast]
    log(f"uploads: raw body, {human_size(size)}, curl -T (PUT)")
    start_all(servers)
    put = ("-T", str(source))
    try:
        targets = [
            Target(
                STOWAGE,
                upload(lambda: shipped.base + "/uploads/bench.bin", size, *shipped.curl_auth, *put),
                shipped,
                lambda: remove_files(blobs),
            ),
            Target(
                STOWAGE_OFF,
                upload(lambda: quiet.base + "/uploads/bench.bin", size, *quiet.curl_auth, *put),
                quiet,
                lambda: remove_files(blobs_off),
            ),
            Target(
                "Stario f.write",
                upload(lambda: stario.base + "/write/bench.bin", size, *put),
                stario,
                lambda: remove_files(peer_out),
            ),
            Target(
                "FastAPI stream",
                upload(lambda: fast.base + "/stream/bench.bin", size, *put),
                fast,
                lambda: remove_files(fast_out),
            ),
            Target(
                "Stario discard",
                upload(lambda: stario.base + "/discard/bench.bin", size, *put),
                stario,
            ),
            Target(
                "dd fdatasync",
                dd_measure(source, work / "dd.out", size),
                None,
                lambda: (work / "dd.out").unlink(missing_ok=True),
            ),
        ]
        run_targets(targets, settings)
    finally:
        stop_all(servers)
    report(
        SuiteResult(
            "uploads",
            f"raw upload {human_size(size)} (Stowage: sha256, fsync, rename, row committed)",
            "MB/s",
            settings.runs,
            settings.warmups,
            targets,
            [
                Pair(STOWAGE, "Stario f.write", 0.85),
                Pair(STOWAGE, "FastAPI stream", 1.3),
                Pair(STOWAGE_OFF, "Stario f.write"),
                Pair(STOWAGE, STOWAGE_OFF),
                Pair(STOWAGE, "Stario discard"),
                Pair(STOWAGE, "dd fdatasync"),
            ],
            [
                "Stario f.write and FastAPI stream write without fsync;"
                " Stario discard reads and drops (the loopback limit);"
                " dd fdatasync is the disk limit (bs=1M).",
            ],
        )
    )


def run_multipart(settings: Settings) -> None:
    size = 32 * MiB if settings.quick else 256 * MiB
    work = fresh_dir(WORK / "multipart")
    source = random_file(WORK / "files" / f"random-{size}", size)
    shipped, quiet, blobs, blobs_off = _stowage_pair(work)
    fast_out = fresh_dir(work / "fastapi-out")
    fast = fastapi_peer("FastAPI UploadFile", fast_out, fast_out, work / "fastapi.db")
    servers = [shipped, quiet, fast]
    log(f"multipart: one file, {human_size(size)}, curl -F (POST multipart/form-data)")
    start_all(servers)
    form = ("-F", f"file=@{source};type=application/octet-stream")
    try:
        targets = [
            Target(
                "Stowage multipart",
                upload(lambda: shipped.base + "/uploads", size, *shipped.curl_auth, *form),
                shipped,
                lambda: remove_files(blobs),
                probe=_probe(lambda: shipped.base + "/uploads", "-F", shipped.curl_auth),
            ),
            Target(
                "Stowage multipart --log off",
                upload(lambda: quiet.base + "/uploads", size, *quiet.curl_auth, *form),
                quiet,
                lambda: remove_files(blobs_off),
                probe=_probe(lambda: quiet.base + "/uploads", "-F", quiet.curl_auth),
            ),
            Target(
                "Stowage PUT",
                upload(
                    lambda: shipped.base + "/uploads/bench.bin",
                    size,
                    *shipped.curl_auth,
                    "-T",
                    str(source),
                ),
                shipped,
                lambda: remove_files(blobs),
            ),
            Target(
                "FastAPI UploadFile",
                upload(lambda: fast.base + "/form", size, *form),
                fast,
                lambda: remove_files(fast_out),
            ),
        ]
        run_targets(targets, settings)
    finally:
        stop_all(servers)
    report(
        SuiteResult(
            "multipart",
            f"multipart upload {human_size(size)} (curl -F)",
            "MB/s",
            settings.runs,
            settings.warmups,
            targets,
            [
                Pair("Stowage multipart", "FastAPI UploadFile", 2.5),
                Pair("Stowage multipart", "Stowage PUT", 0.85),
                Pair("Stowage multipart --log off", "FastAPI UploadFile"),
            ],
            ["FastAPI UploadFile: spooled by python-multipart, then shutil.copyfileobj to disk."],
        )
    )


def _probe(url: Callable[[], str], kind: str, auth: tuple[str, ...]) -> Callable[[], None]:
    """One tiny upload first, so a transport that is not there yet is reported, not failed."""
    tiny = WORK / "files" / "probe.bin"

    def probe() -> None:
        random_file(tiny, 1024)
        if kind == "-F":
            t = curl(url(), *auth, "-F", f"file=@{tiny};type=application/octet-stream")
        else:
            body = _signals_body(tiny, WORK / "files" / "probe.json")
            t = curl(
                url(), *auth, "-H", "content-type: application/json", "--data-binary", f"@{body}"
            )
        if t.status == 415:
            raise Unavailable(f"HTTP 415: {_error_text(t.body)}")
        if not 200 <= t.status < 300:
            raise RuntimeError(f"probe of {url()} answered {t.status}: {_error_text(t.body)}")

    return probe


def _signals_body(source: Path, out: Path) -> Path:
    """Datastar's file-signal shape: {"files": [{"name", "contents" (base64), "mime"}]}."""
    contents = base64.b64encode(source.read_bytes()).decode()
    doc = {
        "files": [{"name": source.name, "contents": contents, "mime": "application/octet-stream"}]
    }
    out.write_text(json.dumps(doc))
    return out


def run_signals(settings: Settings) -> None:
    size = 2 * MiB if settings.quick else 8 * MiB
    reps = 2 if settings.quick else 4
    work = fresh_dir(WORK / "signals")
    source = random_file(WORK / "files" / f"random-{size}", size)
    body = _signals_body(source, work / "signals.json")
    shipped, quiet, blobs, blobs_off = _stowage_pair(work)
    servers = [shipped, quiet]
    log(
        f"signals: one {human_size(size)} file as a JSON file signal "
        f"({body.stat().st_size / MB:.1f} MB body), {reps} uploads per measurement"
    )
    start_all(servers)
    signals = ("-H", "content-type: application/json", "--data-binary", f"@{body}")
    form = ("-F", f"file=@{source};type=application/octet-stream")
    try:
        targets = [
            Target(
                "Stowage signals",
                upload(
                    lambda: shipped.base + "/uploads", size, *shipped.curl_auth, *signals, reps=reps
                ),
                shipped,
                lambda: remove_files(blobs),
                probe=_probe(lambda: shipped.base + "/uploads", "json", shipped.curl_auth),
            ),
            Target(
                "Stowage signals --log off",
                upload(
                    lambda: quiet.base + "/uploads", size, *quiet.curl_auth, *signals, reps=reps
                ),
                quiet,
                lambda: remove_files(blobs_off),
                probe=_probe(lambda: quiet.base + "/uploads", "json", quiet.curl_auth),
            ),
            Target(
                "Stowage multipart",
                upload(
                    lambda: shipped.base + "/uploads", size, *shipped.curl_auth, *form, reps=reps
                ),
                shipped,
                lambda: remove_files(blobs),
                probe=_probe(lambda: shipped.base + "/uploads", "-F", shipped.curl_auth),
            ),
        ]
        run_targets(targets, settings)
    finally:
        stop_all(servers)
    report(
        SuiteResult(
            "signals",
            f"file-signal upload, {human_size(size)} file (JSON, base64)",
            "MB/s",
            settings.runs,
            settings.warmups,
            targets,
            [Pair("Stowage signals", "Stowage multipart")],
            ["MB/s of file bytes; the JSON body is 4/3 larger (base64)."],
        )
    )
