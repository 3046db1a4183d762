"""Export of a 50-clip package (real fight-surv CCTV) as a ratio to copying the same files in the same run.

The baseline is what a person would do without Custodes: copy the 50 clips into a folder and write their
SHA-256 list (``cp`` + ``sha256sum``). The export does that and more: a contact sheet per clip, the signed
ledger slice, the report as HTML and PDF, SHA256SUMS, the signed manifest. Also timed: the PDF alone
(WeasyPrint, rendered again from the package's report.html), checking the package with ``sha256sum -c``
alone and with ``custodes verify-package``.

Alone: ``.venv/bin/python bench/export_bench.py`` (prints the JSON), or ``CUSTODES_BENCH_ONLY=export make bench``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLIPS = 50


def _files(data: Path, n: int) -> list[Path]:
    fight, calm = sorted((data / "fight").glob("*.mp4")), sorted((data / "noFight").glob("*.mp4"))
    return (fight[: n // 2] + calm[: n - n // 2])[:n]


def run(work: Path, data: Path, n: int = CLIPS) -> dict[str, object]:
    from custodes.export.package import export_package, verify_package
    from custodes.ingest.pipeline import Ingestor
    from custodes.store.case import Case

    src = work / "export-clips"
    src.mkdir()
    for f in _files(data, n):
        shutil.copy2(f, src / f.name)
    files = sorted(src.iterdir())
    size = sum(f.stat().st_size for f in files)
    case = Case.init(work / "export-case", "bench", title="export bench")
    Ingestor(case, "bench").run([src])
    for f in files:  # warm the page cache for both sides alike
        f.read_bytes()

    def copy_baseline() -> float:
        dst = work / f"copy-{time.monotonic_ns()}"
        dst.mkdir()
        t0 = time.perf_counter()
        for f in files:
            shutil.copyfile(f, dst / f.name)
        subprocess.run(["sha256sum", *[p.name for p in sorted(dst.iterdir())]], cwd=dst, check=True,
                       stdout=subprocess.DEVNULL)
        dt = time.perf_counter() - t0
        shutil.rmtree(dst)
        return dt

    copy_s = min(copy_baseline() for _ in range(3))
    t0 = time.perf_counter()
    doc = export_package(case, work / "export-pkg", "bench")
    export_s = time.perf_counter() - t0
    pkg = work / "export-pkg"
    t0 = time.perf_counter()
    sums = subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=pkg, capture_output=True)
    sums_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    rep = verify_package(pkg)
    verify_s = time.perf_counter() - t0
    # where the export's time goes: the PDF alone, rendered again from the package's own report.html
    from custodes.export.package import _write_pdf

    t0 = time.perf_counter()
    _write_pdf((pkg / "report.html").read_text(encoding="utf-8"), work / "again.pdf")
    pdf_s = time.perf_counter() - t0
    pages = None
    if shutil.which("pdfinfo"):
        info = subprocess.run(["pdfinfo", str(pkg / "report.pdf")], capture_output=True, text=True).stdout
        pages = next((int(x.split()[1]) for x in info.splitlines() if x.startswith("Pages:")), None)
    return {
        "bench": f"export of a {len(files)}-clip package (real fight-surv CCTV, {size / 2**20:.1f} MiB)",
        "clips": len(files), "items": doc["items"], "pdf_pages": pages,
        "copy_and_sha256sum_s": round(copy_s, 3), "export_s": round(export_s, 2),
        "export_vs_copy": round(export_s / copy_s, 1) if copy_s > 0 else None,
        "of_which_pdf_s": round(pdf_s, 2),
        "sha256sum_c_s": round(sums_s, 3), "sha256sum_c_ok": sums.returncode == 0,
        "verify_package_s": round(verify_s, 3), "verify_package_ok": rep.ok,
    }


if __name__ == "__main__":
    data = Path(os.environ.get("CUSTODES_FIGHT_SURV", "/work/shared/data/fight-surv"))
    if not (data / "fight").is_dir():
        print(f"fight-surv clips not found at {data}", file=sys.stderr)
        sys.exit(2)
    with tempfile.TemporaryDirectory(dir=os.environ.get("CUSTODES_BENCH_DIR")) as d:
        print(json.dumps(run(Path(d), data), indent=2))
