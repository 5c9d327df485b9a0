"""What the benchmark scripts share: the repository root and the example generator."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_generator():
    """examples/make_collection.py, installed as the module ``make_collection`` (``pip
    install -e examples``, done by scripts/bootstrap.sh)."""
    import make_collection

    return make_collection


def add_smoke_option(parser, **tiny) -> None:
    """Give a benchmark ``--smoke``: the given tiny values replace the options' defaults
    (sizes, repeats) and work files go to a temporary directory, so CI can run every
    benchmark in seconds and notice when one stops working. Smoke figures mean nothing."""
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes and 1-2 repeats: proves the benchmark runs; its figures mean nothing")
    parser.set_defaults(smoke_values=tiny)


def parse_args(parser, argv=None):
    """``parser.parse_args`` with ``--smoke`` applied (see ``add_smoke_option``)."""
    args = parser.parse_args(argv)
    if args.smoke:
        for name, value in args.smoke_values.items():
            setattr(args, name, value)
    return args


def out_dir(smoke: bool) -> Path:
    """Where cached catalogs and basedirs live: ``benchmarks/out`` (kept between runs), or
    a fresh temporary directory in smoke mode (removed at exit)."""
    if not smoke:
        return ROOT / "benchmarks" / "out"
    import atexit
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="lcpanel-bench-smoke-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path
