"""Package download benchmark: resumable, verified HTTP download over loopback vs a raw file copy.

Baselines, measured in the same run on the same blob: ``shutil.copyfile`` (what a local copy
costs) and one SHA-256 pass (the verification floor). The download goes through the real stack:
uvicorn + the blob router streaming from a FileBlobStore, httpx + ResumableDownloader hashing and
fsyncing as it writes. A second figure cuts the transfer at half and times the resume.

    .venv/bin/python bench/bench_blobs.py [--quick]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from forecourt.blobs import (
    BlobRef,
    FileBlobStore,
    ResumableDownloader,
    RetriesExhausted,
    RetryPolicy,
    blob_router,
)
from forecourt.http.serving import serve_in_thread
from forecourt.logging import configure_logging

MIB = 1024 * 1024


def serve(app: Any) -> AbstractContextManager[str]:
    config = uvicorn.Config(app, lifespan="off", log_level="critical", access_log=False)
    return serve_in_thread(config, name="bench-blobs")


def best_of(runs: int, action: Callable[[], None]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times) if runs < 3 else statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    size = (32 if args.quick else 256) * MIB
    runs = 2 if args.quick else 3
    configure_logging("WARNING")

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = FileBlobStore(root / "cloud")
        ref = store.put(os.urandom(MIB) for _ in range(size // MIB))
        source = store.path_of(ref.sha256)
        app = FastAPI()
        app.include_router(blob_router(store, lambda: None))

        def copy() -> None:
            shutil.copyfile(source, root / "copy")
            (root / "copy").unlink()

        def hash_once() -> None:
            with source.open("rb") as f:
                hashlib.file_digest(f, "sha256")

        with serve(app) as url, httpx.Client() as http:
            loader = ResumableDownloader(http)
            blob_url = f"{url}/v1/packages/{ref.sha256}"

            def download() -> None:
                dest = root / "dl"
                loader.download(blob_url, dest, ref)
                dest.unlink()

            t_copy = best_of(runs, copy)
            t_hash = best_of(runs, hash_once)
            t_download = best_of(runs, download)
            t_resume, resumed = resume_at_half(http, blob_url, ref, root)

    def mbps(seconds: float) -> float:
        return size / MIB / seconds

    print(f"blob size                     {size // MIB} MiB, {runs} runs each")
    print(f"baseline raw file copy        {mbps(t_copy):8.0f} MiB/s")
    print(f"baseline sha256 pass          {mbps(t_hash):8.0f} MiB/s")
    print(
        f"HTTP download + verify        {mbps(t_download):8.0f} MiB/s"
        f"   ratio to copy {t_copy / t_download:5.2f}x   to sha256 {t_hash / t_download:5.2f}x"
    )
    print(
        f"resume after cut at half      {t_resume * 1000:8.0f} ms"
        f"   fetched {resumed / MIB:.1f} MiB of {size / MIB:.0f} MiB on resume"
    )


def resume_at_half(http: httpx.Client, url: str, ref: BlobRef, root: Path) -> tuple[float, int]:
    """Download half (client stops reading), then time the resume of the rest."""
    dest = root / "resume"
    part = ResumableDownloader.part_path(dest)
    with http.stream("GET", url) as response, part.open("wb") as out:
        for chunk in response.iter_bytes():
            out.write(chunk)
            if out.tell() >= ref.size // 2:
                break
    one_try = ResumableDownloader(http, retry=RetryPolicy(max_attempts=1))
    start = time.perf_counter()
    try:
        result = one_try.download(url, dest, ref)
    except RetriesExhausted as exc:
        raise SystemExit(f"resume failed: {exc}") from exc
    return time.perf_counter() - start, result.bytes_transferred


if __name__ == "__main__":
    main()
