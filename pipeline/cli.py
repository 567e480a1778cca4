"""The ``wit`` command: curate, inspect, refilter, search, train, eval, sample, demo.

Input: command-line arguments; unknown flags are Beam's and pass through
untouched (``--runner``, ``--project``, ``--direct_num_workers``, ...).
Output: exit code 0 on success, 2 on a usage/config error, 1 on a run failure
(or broken accounting), and for ``curate`` 3 when the run completed but some
items met a bug in our code (``*.internal_error``; see ``CURATE_EXIT_CODES``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from typing import Optional, Sequence

log = logging.getLogger("wit")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL_ERRORS = 0, 1, 2, 3
CURATE_EXIT_CODES = """exit codes:
  0  the run completed and every pair is accounted for
  1  the run failed, or the accounting identity is broken (a lost pair)
  2  usage or config error (nothing ran)
  3  the run completed and wrote every output, but some items (pairs, pages, seed lines) met a
     bug in wit-curator: each is a rejection with reason <stage>.internal_error (pages: a page
     failure) whose detail names the exception and where; see stats.json internal_errors,
     OUT/rejections and the WARNING log lines"""


CURATE_DESCRIPTION = """Curate image/alt-text pairs into webdataset shards, parquet and a rejections table.

At least one input is required: --seeds (crawl), --url-list or --warc (any mix). Examples:
  crawl a site:     wit curate --seeds seeds.txt --output out/
  a URL pool:       wit curate --url-list pool.parquet --url-col url --caption-col caption --output out/
  web archives:     wit curate --warc 'crawl/*.warc.gz' --output out/
  your settings:    wit curate --url-list pool.parquet --config my.yaml --set score.min_score=0.3 --output out/

Any flag not listed below is Apache Beam's and passes through unchanged, e.g.
  --direct_running_mode=multi_processing --direct_num_workers=2        (several local processes)
  --runner DataflowRunner --project P --region R --temp_location gs://B/tmp   (Google Cloud Dataflow)"""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written; every option's default shown (unless the help says it)."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        # identity, not ==: a default of 0 is shown (0 == False)
        shown = not (default is None or default is False or default == [] or default is argparse.SUPPRESS
                     or isinstance(action, argparse._HelpAction))
        if shown and "%(default)" not in text and "default" not in text.lower() and action.option_strings:
            text += " (default: %(default)s)"
        return text


def _setup_logging(verbose: bool) -> None:
    # Beam configures the root logger at import; force our format and level.
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    for noisy in ("apache_beam", "urllib3", "PIL", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _add_curate(sub) -> None:
    p = sub.add_parser("curate", help="crawl, filter, score and write shards", description=CURATE_DESCRIPTION,
                       epilog=CURATE_EXIT_CODES, formatter_class=HelpFormatter)
    p.add_argument("--config", action="append", default=[], help="YAML over configs/base.yaml (repeatable; later files win)")
    p.add_argument("--output", required=True, help="output directory (local or gs://)")
    p.add_argument("--seeds", help="file of seed URLs, one per line")
    p.add_argument("--url-list", help="img2dataset-style URL list(s): parquet/csv/tsv/json/jsonl/txt[.gz], glob ok")
    p.add_argument("--url-col", default="url", help="URL column of --url-list (default: url)")
    p.add_argument("--caption-col", default="caption", help="caption column of --url-list (default: caption)")
    p.add_argument("--uid-col", default="uid", help="column of --url-list carried as the sample's uid, e.g. "
                   "DataComp's (default: uid; a missing column means no uid)")
    p.add_argument("--warc", help="web archive(s): WARC, WARC.gz or Common Crawl WAT files, glob ok (local or gs://)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set score.min_score=0.3")
    p.add_argument("--allow-private-networks", action="store_true",
                   help="lift the SSRF guard (needed for loopback/intranet sites)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run in --output")
    p.add_argument("--resume", action="store_true",
                   help="continue a killed run in --output (same config): saved image fetches are reused")
    p.add_argument("--incremental", action="store_true",
                   help="rerun a finished --output (same config, output.keep_fetched) over grown inputs: "
                   "only images not fetched before are downloaded")


def _add_inspect(sub) -> None:
    p = sub.add_parser("inspect", help="the funnel, samples or an HTML report of a curated output",
                       formatter_class=HelpFormatter)
    p.add_argument("output", help="a wit curate output directory, or an img2dataset output folder")
    p.add_argument("--html", metavar="PATH", help="write a static report: PATH (e.g. report.html) and "
                   "PATH's <stem>_assets/ beside it; opens from disk, no server")
    p.add_argument("--sample", type=int, metavar="N", help="print N random kept samples (caption, url, score)")
    p.add_argument("--reason", help="with --sample: draw from the rejections with this reason "
                   "(e.g. clip.below_threshold) or stage prefix (e.g. caption)")
    p.add_argument("--seed", type=int, default=0, help="random seed for --sample and the report's picks")


def _add_search(sub) -> None:
    p = sub.add_parser("search", help="text->image (or --image: image->image) search over a curated output",
                       formatter_class=HelpFormatter)
    p.add_argument("output", help="a wit curate output directory (with embeddings/)")
    p.add_argument("query", nargs="?", help='text, e.g. "a red circle on a blue background"')
    p.add_argument("--image", metavar="PATH", help="search with this image instead of text")
    p.add_argument("--k", type=int, default=20, help="how many hits")
    p.add_argument("--html", metavar="PATH", help="also write the hits as a report page (PATH + <stem>_assets/)")
    p.add_argument("--exact-max", type=int, default=1_000_000,
                   help="exact numpy search up to this many samples, an HNSW index (faiss) beyond")
    p.add_argument("--model", help="open_clip model of the output's scorer (default: run_config.yaml)")
    p.add_argument("--pretrained", help="its weights (default: run_config.yaml)")


def _add_blocklist_hash(sub) -> None:
    p = sub.add_parser("blocklist-hash", help="print sha256 and pHash of image files, for blocklist.sha256 / .phash",
                       formatter_class=HelpFormatter)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files to hash")


def _add_sample(sub) -> None:
    p = sub.add_parser("sample", help="the offline sample web", formatter_class=HelpFormatter)
    ssub = p.add_subparsers(dest="sample_cmd", required=True)
    serve = ssub.add_parser("serve", help="generate the sample web and serve it on 127.0.0.1",
                            formatter_class=HelpFormatter)
    serve.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port, printed)")
    serve.add_argument("--seed", type=int, default=0, help="generator seed: the same seed, the same web")
    write = ssub.add_parser("write", help="write the sample web (files + manifest.json) to a directory",
                            formatter_class=HelpFormatter)
    write.add_argument("directory", help="where the files go")
    write.add_argument("--seed", type=int, default=0, help="generator seed: the same seed, the same web")
    scorer = ssub.add_parser("train-scorer", help="retrain the bundled offline scorer", formatter_class=HelpFormatter)
    scorer.add_argument("--output", default="models", help="directory for the scorer's .pt and model JSON")
    scorer.add_argument("--steps", type=int, default=None,
                        help="training steps (default: the recipe's own count)")


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="serve the sample web, curate it, train on the result",
                       formatter_class=HelpFormatter)
    p.add_argument("--output", default="demo_output", help="directory for the curated output, model and report")
    p.add_argument("--train-steps", type=int, default=200, help="contrastive training steps on the curated shards")


def _add_refilter(sub) -> None:
    p = sub.add_parser("refilter", help="re-apply CLIP thresholds / dedupe to a curated output, without re-scoring",
                       formatter_class=HelpFormatter)
    p.add_argument("source", help="a wit curate output directory")
    p.add_argument("--output", required=True, help="new output directory (a complete output)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--min-score", type=float, help="absolute CLIP score threshold")
    which.add_argument("--keep-fraction", type=float, help="keep the top fraction by CLIP score (0-1]")
    p.add_argument("--near-threshold", type=int, help="re-run near-duplicate dedupe with this Hamming distance")
    p.add_argument("--near-policy", help="re-run near-duplicate dedupe with this survivor policy")
    p.add_argument("--semantic-eps", type=float, help="run semantic dedupe (cosine > 1 - eps) on the embeddings")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run in --output")


def build_parser() -> argparse.ArgumentParser:
    from trainer.cli import add_eval_parser, add_train_parser

    parser = argparse.ArgumentParser(prog="wit", formatter_class=HelpFormatter, description=(
        "wit-curator: build WIT-style (CLIP) image/alt-text datasets and train on them. "
        "Run wit COMMAND --help for a command's options."))
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_curate(sub)
    _add_inspect(sub)
    add_train_parser(sub, HelpFormatter)
    add_eval_parser(sub, HelpFormatter)
    _add_sample(sub)
    _add_demo(sub)
    _add_refilter(sub)
    _add_search(sub)
    _add_blocklist_hash(sub)
    from pipeline.ab import add_ab_parser

    add_ab_parser(sub, HelpFormatter)
    from pipeline.export import add_export_parser

    add_export_parser(sub, HelpFormatter)  # wit export datacomp | open-clip-config
    return parser


def _freeze_imports() -> None:
    """Move what the imports made (Beam's is ~1M objects) out of the garbage collector's sight.

    They live until exit anyway. Without this every full collection walks them,
    and so does interpreter shutdown: ``import apache_beam`` alone makes exit
    take 0.9 s, against 0.1 s frozen.
    """
    import gc

    gc.freeze()


def cmd_curate(args, beam_args: Sequence[str]) -> int:
    from pipeline.build import Inputs
    from pipeline.config import load_config
    from pipeline.run import format_funnel, format_internal_errors, internal_error_count, run_curation

    _freeze_imports()
    overrides = list(args.overrides)
    if args.allow_private_networks:
        overrides.append("fetch.allow_private_networks=true")
    cfg = load_config(args.config, overrides)
    inputs = Inputs(seeds_file=args.seeds, url_list=args.url_list, url_col=args.url_col,
                    caption_col=args.caption_col, uid_col=args.uid_col, warc=args.warc)
    stats = run_curation(cfg, inputs, args.output, beam_args, overwrite=args.overwrite, show_progress=True,
                         resume=args.resume, incremental=args.incremental)
    print(format_funnel(stats, args.output))
    internal = internal_error_count(stats)
    if internal:  # after every output is written: the run is usable, but a bug needs a look
        print(format_internal_errors(stats, args.output), file=sys.stderr)
    if not stats["accounting_ok"]:
        return EXIT_FAILED
    return EXIT_INTERNAL_ERRORS if internal else EXIT_OK


def cmd_inspect(args) -> int:
    from pipeline.report import load_run
    from pipeline.report.terminal import print_samples, print_summary

    if args.reason and not args.sample:
        print("wit: error: --reason needs --sample N", file=sys.stderr)
        return 2
    run = load_run(args.output)
    if args.sample:
        print_samples(run, args.sample, reason=args.reason, seed=args.seed)
        return 0
    print_summary(run)
    if args.html:
        from pipeline.report.render_html import write_report

        print(f"report: {write_report(run, args.html, seed=args.seed)}")
    return 0


def cmd_search(args) -> int:
    from pipeline.search import load_searcher

    if bool(args.query) == bool(args.image) or args.k < 1:
        print("wit: error: give a text query or --image PATH (not both), and --k >= 1", file=sys.stderr)
        return 2
    searcher = load_searcher(args.output, exact_max=args.exact_max, model=args.model, pretrained=args.pretrained)
    hits = searcher.search_image(args.image, args.k) if args.image else searcher.search_text(args.query, args.k)
    for hit in hits:
        print(f"{hit.rank:>3}  {hit.similarity:6.3f}  {hit.row['key']}  {hit.row['caption']!r}  {hit.row['url']}")
    if args.html:
        from pipeline.report import load_run
        from pipeline.report.search_html import write_search_report

        path = write_search_report(load_run(args.output), hits, args.html, query_text=args.query or "",
                                   query_image=args.image, index_method=searcher.index.method)
        print(f"search page: {path}")
    return 0


def cmd_blocklist_hash(args) -> int:
    """``sha256  phash  path`` per image: the values blocklist.sha256 and blocklist.phash match."""
    import hashlib
    import io

    from PIL import Image

    from transforms.hashing import phash_image, to_hex

    failed = 0
    for path in args.images:
        try:
            with open(path, "rb") as fh:
                data = fh.read()
            with Image.open(io.BytesIO(data)) as img:
                phash = to_hex(phash_image(img))
        except OSError as exc:  # missing file, or not an image Pillow decodes
            print(f"wit: error: {path}: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"{hashlib.sha256(data).hexdigest()}  {phash}  {path}")
    return 1 if failed else 0


def cmd_sample(args) -> int:
    from pipeline.sample import SampleServer, generate_site, write_site

    if args.sample_cmd == "train-scorer":
        from pipeline.sample.scorer import train_sample_scorer

        result = train_sample_scorer(args.output, steps=args.steps)
        print(f"scorer written to {result['checkpoint']} (ROC AUC matched vs mismatched on the sample web {result['auc']:.3f})")
        return 0
    site = generate_site(seed=args.seed)
    if args.sample_cmd == "write":
        write_site(site, args.directory)
        print(f"sample web written to {args.directory} ({len(site.manifest)} images in the manifest)")
        return 0
    with SampleServer(site, port=args.port) as server:
        for url in server.seed_urls:
            print(url, flush=True)
        print("serving on 127.0.0.1; Ctrl-C to stop", file=sys.stderr, flush=True)
        try:
            while server.running:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    return 0


def cmd_demo(args) -> int:
    from pipeline.demo import run_demo

    result = run_demo(args.output, train_steps=args.train_steps)
    print(result["summary"])
    return 0 if result["stats"]["accounting_ok"] else 1


def cmd_refilter(args, beam_args: Sequence[str]) -> int:
    from pipeline.refilter import RefilterRequest, run_refilter
    from pipeline.run import format_funnel

    _freeze_imports()
    request = RefilterRequest(args.min_score, args.keep_fraction, args.near_threshold, args.near_policy,
                              args.semantic_eps)
    stats = run_refilter(args.source, args.output, request, beam_args, overwrite=args.overwrite)
    print(format_funnel(stats, args.output))
    extra = stats.get("refilter", {})
    print(f"refilter: threshold used {stats['thresholds'].get('clip_min_score')} "
          f"(requested {extra.get('requested_clip_min_score')}); kept {stats['kept']} of {extra.get('source_kept')}")
    return 0 if stats["accounting_ok"] else 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    _setup_logging(args.verbose)
    from filters.blocklist_lists import BlocklistError
    from transforms.safety_tags import SafetyInputError
    from pipeline.search_index import SearchInputError
    from pipeline.config import ConfigError
    from pipeline.run import CannotResume, OutputExists
    from pipeline.report import ReportInputError
    from transforms.clip_model import ScorerUnavailable
    from transforms.url_list import UrlListError
    from transforms.warc import WarcInputError

    if rest and args.command not in ("curate", "refilter", "ab"):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.beam_args = rest
    try:
        if args.command == "curate":
            return cmd_curate(args, rest)
        if args.command == "refilter":
            return cmd_refilter(args, rest)
        if args.command == "inspect":
            return cmd_inspect(args)
        if args.command == "sample":
            return cmd_sample(args)
        if args.command == "demo":
            return cmd_demo(args)
        if args.command == "search":
            return cmd_search(args)
        if args.command == "blocklist-hash":
            return cmd_blocklist_hash(args)
        return args.handler(args)
    except (ConfigError, OutputExists, ScorerUnavailable, UrlListError, WarcInputError, CannotResume, ReportInputError,
            BlocklistError, SafetyInputError, SearchInputError) as exc:
        print(f"wit: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
