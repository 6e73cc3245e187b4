"""Real videos for the tests, made by the static ffmpeg of the pinned dev dependency
`imageio-ffmpeg` (a PyPI wheel: the same binary on every machine, whatever the system
has installed; docs/testing.md). The app finds ffmpeg on PATH (app/previews/thumbnails.py
`ffmpeg_found`), so `ffmpeg_on_path` puts a directory holding it first there for an app
under test, which then makes video posters.

Its fixtures are loaded for every tier by tests/conftest.py; `videos` is made once per
run (each video in well under a second)."""

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import pytest

# Constrained baseline H.264 and AAC in MP4 play in every browser; VP9 and Opus in WebM
# in every browser but old Safari.
CODECS = {
    "mp4": ["-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "baseline",
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k",
            # The index (moov) first: a browser reads duration and seek points from the
            # first range it asks for, then seeks by range.
            "-movflags", "+faststart"],
    "webm": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8",
             "-pix_fmt", "yuv420p", "-c:a", "libopus", "-b:a", "48k",
             # The same for WebM: its index (cues) first.
             "-cues_to_front", "1"],
}  # fmt: skip


def ffmpeg() -> str:
    """The path of the wheel's ffmpeg (named ffmpeg-<platform>-<version>)."""
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def make_video(
    target: Path,
    *,
    seconds: float = 6.0,
    size: tuple[int, int] = (320, 240),
    container: str = "mp4",
    rate: int = 25,
    bitrate: str = "8M",
    audio: bool = True,
) -> Path:
    """A test pattern with film grain (so that its bytes do not compress to nothing: a
    6 s clip is some 6 MB, so that a browser reading ahead from the start, 2 MB or so,
    has to ask for a new range to seek near its end), a key frame every second (seeks
    land on one quickly) and a 440 Hz tone."""
    width, height = size
    inputs = ["-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={rate}:duration={seconds}"]
    if audio:
        inputs += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    codecs = CODECS[container] if audio else [*CODECS[container], "-an"]
    subprocess.run(
        [ffmpeg(), "-nostdin", "-v", "error", *inputs,
         "-vf", "noise=alls=20:allf=t", "-b:v", bitrate, "-maxrate", bitrate, "-bufsize", "1M",
         "-g", str(rate), *codecs, "-shortest", "-y", str(target)],
        check=True, timeout=120,
    )  # fmt: skip
    return target


@dataclass(frozen=True, slots=True)
class Videos:
    """6 s, 320x240, 25 frames a second, with sound."""

    mp4: Path
    webm: Path
    seconds: float = 6.0


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Videos:
    folder = tmp_path_factory.mktemp("videos")
    return Videos(
        mp4=make_video(folder / "clip.mp4", container="mp4"),
        # VP9 at its fastest spends less than it is allowed: asked for more, about as large.
        webm=make_video(folder / "clip.webm", container="webm", bitrate="12M"),
    )


@pytest.fixture(scope="session")
def ffmpeg_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory whose `ffmpeg` is the wheel's (the name the app looks for)."""
    folder = tmp_path_factory.mktemp("ffmpeg-bin")
    (folder / "ffmpeg").symlink_to(ffmpeg())
    return folder


@pytest.fixture
def ffmpeg_on_path(ffmpeg_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The wheel's ffmpeg first on this process's PATH for one test (the app under a
    TestClient, its worker processes and a server started by the test inherit it).
    Ask for it before the fixture that builds the app (`client`)."""
    monkeypatch.setenv("PATH", f"{ffmpeg_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    yield ffmpeg_dir
