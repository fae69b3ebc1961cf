"""Build the herbdesk desktop bundle with PyInstaller, from a virtual environment of its own.

    python packaging/build.py             # one-folder bundle: dist/herbdesk/herbdesk
    python packaging/build.py --onefile   # one file: dist/herbdesk-<version> (unpacks to /tmp)
    python packaging/build.py --smoke     # then run the frozen smoke test
    python packaging/build.py --archive   # also dist/herbdesk-<version>-<os>-<arch>.tar.gz

The build venv (build/venv-pyinstaller) holds the project (a normal, non-editable install, so
package data is laid out as users get it), PyInstaller and exactly one Qt binding:
PyInstaller bundles whatever bindings it finds, and a second one doubles the size or picks the
wrong plugins. Only the standard library is used here, so any Python 3.11+ can run it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "packaging" / "herbdesk.spec"
VENV = ROOT / "build" / "venv-pyinstaller"
WORK = ROOT / "build" / "pyinstaller"
PYINSTALLER = "pyinstaller>=6.10,<7"
# PySide6-Essentials 6.12.0 drops references on Python 3.11 (see pyproject.toml); the bundle
# is built and tested against 6.11.x, so the build pins that series rather than the newest.
CONSTRAINTS = ("PySide6-Essentials>=6.11,<6.12", "shiboken6>=6.11,<6.12")
OTHER_QT = ("PyQt5", "PyQt6", "PySide2", "PySide6-Addons", "PySide6", "opencv-python")


def _bin(name: str) -> Path:
    return VENV / ("Scripts" if os.name == "nt" else "bin") / _exe_name(name)


def _exe_name(stem: str) -> str:
    return f"{stem}.exe" if os.name == "nt" else stem


def _run(cmd: list[str | Path], **kw: object) -> None:
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kw)  # type: ignore[call-overload]


def make_venv(fresh: bool) -> None:
    """Create the build venv and install the project into it (always, so sources are current)."""
    VENV.parent.mkdir(parents=True, exist_ok=True)
    if fresh and VENV.exists():
        shutil.rmtree(VENV)
    if not _bin("python").exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    constraints = ROOT / "build" / "constraints.txt"
    constraints.parent.mkdir(parents=True, exist_ok=True)
    constraints.write_text("\n".join(CONSTRAINTS) + "\n", encoding="utf-8")
    # setuptools stages the wheel in build/lib of the checkout and never prunes it: a module
    # deleted from the sources would live on in the bundle.
    for stale in [ROOT / "build" / "lib", *ROOT.glob("build/bdist.*")]:
        shutil.rmtree(stale, ignore_errors=True)
    pip: list[str | Path] = [_bin("python"), "-m", "pip", "--disable-pip-version-check"]
    _run([*pip, "install", "-q", "-c", constraints, PYINSTALLER, str(ROOT)])
    # Reinstall herbdesk itself without the cache so an unchanged version number still
    # picks up edited sources and resources.
    _run([*pip, "install", "-q", "--no-deps", "--force-reinstall", "--no-cache-dir", str(ROOT)])
    check_single_qt_binding()


def _norm(name: str) -> str:
    """PEP 503 name: pip prints PySide6_Essentials, users write PySide6-Essentials."""
    return name.lower().replace("_", "-").replace(".", "-")


def check_single_qt_binding() -> None:
    """Fail if the venv holds a Qt binding besides PySide6-Essentials."""
    out = subprocess.run(
        [_bin("python"), "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    names = {_norm(line.split("==")[0]) for line in out.splitlines() if "==" in line}
    extra = [q for q in OTHER_QT if _norm(q) in names]
    if extra or "pyside6-essentials" not in names:
        sys.exit(f"build venv must hold PySide6-Essentials as its only Qt binding; found {extra}")


def installed_version() -> str:
    """herbdesk's version as the build venv (and so the spec) sees it."""
    code = "import importlib.metadata as m; print(m.version('herbdesk'))"
    return subprocess.run(
        [_bin("python"), "-c", code], check=True, capture_output=True, text=True
    ).stdout.strip()


def archive(bundle: Path) -> Path:
    """dist/herbdesk-<version>-<os>-<arch>.tar.gz (.zip on Windows) of the one-folder bundle."""
    import platform

    plat = {"win32": "windows", "darwin": "macos"}.get(sys.platform, sys.platform)
    base = bundle.parent / f"herbdesk-{installed_version()}-{plat}-{platform.machine().lower()}"
    fmt = "zip" if os.name == "nt" else "gztar"
    return Path(shutil.make_archive(str(base), fmt, bundle.parent, bundle.name))


def dir_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def build(onefile: bool, no_excludes: bool, distpath: Path) -> Path:
    """Run PyInstaller on the spec; returns the bundle (folder, or file for --onefile)."""
    spec_args = []
    if onefile:
        spec_args.append("--onefile")
    if no_excludes:
        spec_args.append("--no-excludes")
    _run(
        [
            _bin("python"),
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--clean",
            "--log-level",
            "WARN",
            "--distpath",
            distpath,
            "--workpath",
            WORK,
            SPEC,
            "--",
            *spec_args,
        ],
        # Not the checkout: `python -m` puts the cwd first on sys.path, and PyInstaller would
        # then freeze the source tree (where resources/ is not inside the package).
        cwd=WORK.parent,
    )
    if onefile:
        return distpath / _exe_name(f"herbdesk-{installed_version()}")
    if sys.platform == "darwin" and (distpath / "herbdesk.app").exists():
        return distpath / "herbdesk.app"
    return distpath / "herbdesk"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--onefile", action="store_true", help="one self-unpacking executable")
    p.add_argument("--smoke", action="store_true", help="run the frozen smoke test afterwards")
    p.add_argument(
        "--fresh-venv", action="store_true", help="recreate build/venv-pyinstaller from scratch"
    )
    p.add_argument(
        "--no-excludes",
        action="store_true",
        help="keep every Qt module/plugin PyInstaller finds (to measure what the excludes save)",
    )
    p.add_argument("--distpath", type=Path, default=ROOT / "dist", help="output folder (dist)")
    p.add_argument(
        "--archive", action="store_true", help="also pack the bundle as a versioned tar.gz/zip"
    )
    args = p.parse_args(argv)

    t0 = time.monotonic()
    make_venv(args.fresh_venv)
    t1 = time.monotonic()
    bundle = build(args.onefile, args.no_excludes, args.distpath.resolve())
    t2 = time.monotonic()
    size = dir_size(bundle)
    line = (
        f"bundle={bundle} size={size / 2**20:.1f}MiB venv={t1 - t0:.0f}s "
        f"pyinstaller={t2 - t1:.0f}s total={t2 - t0:.0f}s"
    )
    (ROOT / "build" / "last-build.txt").write_text(line + "\n", encoding="utf-8")
    print(f"BUILD {line}", flush=True)
    if args.archive:
        t3 = time.monotonic()
        packed = archive(bundle)
        print(
            f"ARCHIVE {packed} {packed.stat().st_size / 2**20:.1f}MiB "
            f"in {time.monotonic() - t3:.0f}s",
            flush=True,
        )
    if args.smoke:
        folder = args.distpath.resolve() / "herbdesk"  # also beside herbdesk.app on macOS
        exe = bundle if args.onefile else folder / _exe_name("herbdesk")
        smoke = ROOT / "packaging" / "smoke_frozen.sh"
        return subprocess.run(["bash", str(smoke), str(exe)], check=False).returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
