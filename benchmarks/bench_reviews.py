"""What saving a review costs now that reviews live in the basedir: a variability-info
edit and an appended comment (catalog row + FTS + history in one SQLite transaction),
against the baseline measured in the same run: the same edit plus rewriting the
object's checkplot pickle (read, pickle, atomic write with fsync), which every save did
before reviews moved out of the survey's directory. Also the budget check a page action
now makes, and the export of every reviewed object's checkplot.

    .venv/bin/python benchmarks/bench_reviews.py [--objects 6] [--repeat 40]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time

from common import add_smoke_option, load_generator, out_dir, parse_args


def p50_ms(fn, repeat: int) -> float:
    times = []
    for i in range(repeat):
        t0 = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=6, help="objects in the example collection")
    parser.add_argument("--repeat", type=int, default=40)
    add_smoke_option(parser, objects=2, repeat=2)
    args = parse_args(parser)

    from lcpanel.app import App
    from lcpanel.config import LimitSettings
    from lcpanel.core.objects import reviews
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.objects.checkplots import read_checkplot_bytes
    from lcpanel.core.datasets import Principal
    from lcpanel.core.catalogs.ingest import add_astrobase_collection
    from lcpanel.core.access.ratelimit import RateLimiter

    root = out_dir(True)  # a fresh temporary directory for the basedir (and the collection when built)
    source = root / "collection"
    if args.example:  # a copy: the last step exports the reviews into the collection's checkplots
        shutil.copytree(args.example, source)
    else:
        load_generator().make_collection(source, nobjects=args.objects, seed=7, lcformat="lcpanel-demo-csv",
                                         workers=2)
    base = Basedir.init(root / "basedir")
    app = App(base.path)
    info = add_astrobase_collection(app, base, source, collection_id="bench", show_progress=False)
    staff, user = Principal("user:staff", "staff"), Principal("user:someone", "user")
    oids = sorted(p.name.split("-", 1)[1].rsplit("-", 1)[0] for p in (source / "checkplots").glob("checkplot-*.pkl*"))
    oid = oids[0]
    cpfile = next((source / "checkplots").glob(f"checkplot-{oid}-*.pkl*"))
    size_mb = cpfile.stat().st_size / 1e6
    settings = app.config.reviews

    def edit(i):
        reviews.set_varinfo(base, info, oid, staff, {"varperiod": 1.0 + i * 1e-3})

    def comment(i):
        reviews.add_comment(base, info, oids[i % len(oids)], staff, f"benchmark comment {i}", settings=settings)

    scratch = root / "scratch" / cpfile.name
    scratch.parent.mkdir(parents=True)
    scratch.write_bytes(cpfile.read_bytes())

    def rewrite(i):  # what every save also did before: rewrite the survey's checkplot
        cp, gzipped, protocol = read_checkplot_bytes(scratch.read_bytes(), scratch.name)
        cp.setdefault("varinfo", {})["varperiod"] = 1.0 + i * 1e-3
        reviews._replace_checkplot(scratch, cp, gzipped, protocol)

    after_edit = p50_ms(edit, args.repeat)
    after_comment = p50_ms(comment, args.repeat)
    cp_rewrite = p50_ms(rewrite, args.repeat)
    before = after_edit + cp_rewrite
    print(f"checkplot of {oid}: {size_mb:.2f} MB; {args.repeat} saves each")
    print(f"varinfo edit, basedir only (now)         p50 {after_edit:8.2f} ms")
    print(f"comment appended, basedir only (now)     p50 {after_comment:8.2f} ms")
    print(f"checkplot rewrite the old save added     p50 {cp_rewrite:8.2f} ms")
    print(f"edit + checkplot rewrite (baseline)      p50 {before:8.2f} ms")
    print(f"now / baseline: {after_edit / before:.2f}")

    limiter = RateLimiter(base.path, LimitSettings(user_requests_per_minute=10**9))  # counts, never refuses
    spend_us = p50_ms(lambda i: limiter.spend(user, None), max(args.repeat * 25, 50)) * 1e3
    print(f"budget check per page action (RateLimiter.spend)  p50 {spend_us:7.0f} µs")

    t0 = time.perf_counter()
    written = reviews.export_reviews(base.path, "bench")
    seconds = time.perf_counter() - t0
    print(f"export: {len(written)} checkplots rewritten in {seconds:.2f} s "
          f"({seconds / max(len(written), 1) * 1e3:.0f} ms each)")


if __name__ == "__main__":
    main()
