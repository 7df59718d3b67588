"""The ``access-atlas`` command line (also ``python -m etl``).

``access-atlas build CONFIG`` runs every stage into a new bundle; the stage commands
(``build-network``, ``load-providers``, ``load-areas``, ``compute-access``) re-run one stage
and the stages after it, taking earlier stages from the current bundle. Errors a user can fix
print one message (file, problem, fix) and exit with status 2; nothing already built changes.
So do a full disk and a build of a region that another build holds (``--wait`` waits for it).
SIGTERM (what a service manager sends) stops a command like Ctrl-C (SIGINT): the temporary
build is removed, one line is printed and the status is 143 (128 + 15; SIGINT's is 130).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from etl import __version__
from etl._errors import AtlasError, Terminated
from etl.config import load_config

logger = logging.getLogger("etl")

REPO_ROOT = Path(__file__).resolve().parents[1]

#: Exit status when stdout is closed early: 128 + SIGPIPE, as a shell reports it.
EXIT_BROKEN_PIPE = 141
#: Exit status after Ctrl-C (128 + SIGINT) and after SIGTERM (128 + SIGTERM).
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


def default_geodata_dir() -> Path:
    """``$ACCESS_ATLAS_GEODATA`` or the repository's ``geodata/`` folder."""
    return Path(os.environ.get("ACCESS_ATLAS_GEODATA", REPO_ROOT / "geodata"))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="access-atlas",
        description="Build region bundles for Access Atlas: where people can reach care for "
        "opioid use disorder, and where they cannot.",
    )
    parser.add_argument("--version", action="version", version=f"access-atlas {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--geodata-dir",
        type=Path,
        default=None,
        help="folder of region bundles (default: $ACCESS_ATLAS_GEODATA or ./geodata)",
    )
    common.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    common.add_argument("--no-progress", action="store_true", help="no progress bars")

    p = sub.add_parser("build", parents=[common], help="run every stage into a new bundle")
    p.add_argument("config", type=Path, help="region config (geodata/configs/<region>.yaml)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing bundle")
    p.add_argument(
        "--if-missing",
        action="store_true",
        help=(
            "do nothing (exit 0) when the bundle already exists; when another build of the "
            "region runs, wait for it and check again"
        ),
    )
    wait_help = "when another build of the region runs, wait for it instead of exiting (2)"
    p.add_argument("--wait", action="store_true", help=wait_help)

    stage_help = {
        "build-network": "re-read the OSM network, then re-run every later stage",
        "load-areas": "re-read census areas and population, then every later stage",
        "load-providers": "re-read (and geocode) the provider lists, then every later stage",
        "build-barriers": "re-build the siting barriers and sitable land, then every later stage",
        "load-transit": "re-read the GTFS feed's transit stops, then every later stage",
        "load-overdose": "re-read the overdose tables (suppressed), then every later stage",
        "compute-access": "re-compute travel times, isochrones, grid and deserts, then tiles",
        "render-tiles": "re-render the bundle's offline basemap tiles",
    }
    from etl.pipeline import STAGE_COMMANDS

    assert set(stage_help) == set(STAGE_COMMANDS), "every pipeline stage has a command"
    for name, text in stage_help.items():
        sp = sub.add_parser(name, parents=[common], help=text)
        sp.add_argument("config", type=Path)
        sp.add_argument(
            "--overwrite",
            action="store_true",
            help="accepted for symmetry: a stage command always replaces its layers",
        )
        sp.add_argument("--wait", action="store_true", help=wait_help)

    p = sub.add_parser(
        "validate", parents=[common], help="check a region config and its input files"
    )
    p.add_argument("config", type=Path)

    p = sub.add_parser(
        "generate-demo", parents=[common], help="write the fictional built-in region's raw inputs"
    )
    p.add_argument("config", type=Path, nargs="?", default=REPO_ROOT / "geodata/configs/demo.yaml")
    p.add_argument("--overwrite", action="store_true", help="regenerate even if present")

    from etl import cli_export

    cli_export.register(sub, common)

    p = sub.add_parser("info", parents=[common], help="summarise a built bundle")
    p.add_argument("region", help="region name or bundle folder")
    p.add_argument("--json", action="store_true", help="print the whole manifest")
    return parser


def _setup_logging(quiet: bool) -> None:
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in ("pyogrio", "fiona", "urllib3", "osmnx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit status.

    When stdout is closed early (``access-atlas info X | head``) the command stops quietly
    with status 141 (128 + SIGPIPE, what a shell shows for a command the pipe ended),
    its remaining output sent to /dev/null, as the Python docs on SIGPIPE recommend.
    """
    try:
        with _sigterm_as_exception():
            status = _main(argv)
    except Terminated:  # before _main could catch it (while parsing the arguments)
        print("access-atlas: terminated (SIGTERM)", file=sys.stderr)
        return EXIT_TERMINATED
    except SystemExit:  # argparse's --help, --version and usage errors
        if not _flush_stdout():
            return EXIT_BROKEN_PIPE
        raise
    except BrokenPipeError:
        _flush_stdout()
        return EXIT_BROKEN_PIPE
    return status if _flush_stdout() else EXIT_BROKEN_PIPE


@contextmanager
def _sigterm_as_exception() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` while the block runs (in the main thread).

    Raised where the program is, it unwinds like Ctrl-C's ``KeyboardInterrupt``: a build
    removes its temporary folder and releases its lock on the way out. A second SIGTERM
    during that clean-up is ignored, so the clean-up finishes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated(signum)

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _flush_stdout() -> bool:
    """Flush stdout; on a closed pipe point it at /dev/null and return False."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return False
    return True


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    _setup_logging(args.quiet)
    geodata = args.geodata_dir or default_geodata_dir()
    try:
        return _dispatch(args, geodata)
    except AtlasError as exc:
        print(f"access-atlas: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("access-atlas: interrupted; the previous bundle is untouched", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated:
        print(
            "access-atlas: terminated (SIGTERM); the previous bundle is untouched",
            file=sys.stderr,
        )
        return EXIT_TERMINATED
    except OSError as exc:
        from etl.bundle.store import disk_full_message, is_disk_full

        if not is_disk_full(exc):
            raise
        # A write outside a bundle's build folder (those are reported by write_bundle).
        target = exc.filename or getattr(args, "out", None)  # an export's output
        msg = disk_full_message(
            exc,
            file=str(target or "a file"),
            folder=Path(target or geodata),
            needs_bytes=None,
            outcome="no bundle was changed; free some space (or raise the limit) and try again",
        )
        print(f"access-atlas: error: {msg}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace, geodata: Path) -> int:
    from etl import cli_export, pipeline
    from etl.bundle.store import Bundle, bundle_path

    if args.command in cli_export.COMMANDS:
        return cli_export.run(args, geodata)
    progress = not (args.no_progress or args.quiet)
    if args.command == "build":
        cfg = load_config(args.config)
        target = bundle_path(geodata, cfg.name)
        if args.if_missing and (target / "manifest.json").exists():
            logger.info("bundle %s exists; nothing to do", target)
            return 0
        # --if-missing: a build of the region that runs now is waited for, and the check
        # made again with its lock held (two `scripts/run.sh` started at once both exit 0).
        built = pipeline.run_build(
            cfg,
            geodata,
            overwrite=args.overwrite,
            progress=progress,
            wait=args.wait,
            if_missing=args.if_missing,
        )
        print(built)
        return 0
    if args.command in pipeline.STAGE_COMMANDS:
        cfg = load_config(args.config)
        stage = pipeline.STAGE_COMMANDS[args.command]
        path = pipeline.run_build(
            cfg, geodata, start=stage, overwrite=True, progress=progress, wait=args.wait
        )
        print(path)
        return 0
    if args.command == "validate":
        return _validate(args.config)
    if args.command == "generate-demo":
        cfg = load_config(args.config)
        if cfg.generate is None:
            print(f"access-atlas: error: {args.config} has no `generate` section", file=sys.stderr)
            return 2
        print(pipeline.ensure_generated_inputs(cfg, force=args.overwrite))
        return 0
    if args.command == "info":
        path = Path(args.region)
        bundle = Bundle.open(path if path.exists() else bundle_path(geodata, args.region))
        if args.json:
            print(json.dumps(bundle.manifest, indent=2))
        else:
            print(_info_text(bundle.manifest))
        return 0
    raise AssertionError(args.command)  # pragma: no cover


def _validate(config: Path) -> int:
    """Print every problem ``build`` would hit, one a line; 2 when any is an error."""
    from etl.validate import validate_config

    cfg = load_config(config)
    report = validate_config(cfg)
    for problem in report.problems:
        print(problem.line())
    n_err, n_warn = len(report.errors), len(report.warnings)
    warned = f", {n_warn} warning{'s' * (n_warn != 1)}" if n_warn else ""
    if n_err:
        print(
            f"access-atlas: error: {config}: {n_err} error{'s' * (n_err != 1)}{warned}; "
            "`build` would fail: fix the lines above and validate again",
            file=sys.stderr,
        )
        return 2
    print(
        f"{config}: valid region config {cfg.name!r} ({cfg.title}); {report.files} input "
        f"files opened{warned}, crs {report.crs or 'chosen at build'}, "
        f"in {report.seconds:.1f} s"
    )
    return 0


def _info_text(m: dict) -> str:
    lines = [
        f"{m['title']} ({m['region']}){'  — FICTIONAL' if m.get('fictional') else ''}",
        f"built {m['built_at']} (build {m['build_id']})",
    ]
    access = m.get("stages", {}).get("access", {}).get("summary", {})
    for key, entry in access.items():
        if "threshold_min" in entry:
            lines.append(
                f"  {key:28s} {entry['people_in_desert']:>10,} people beyond "
                f"{entry['threshold_min']:g} min; median {entry['median_minutes']} min"
            )
    lines.append("layers: " + ", ".join(m.get("layers", {})))
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
