#!/usr/bin/env bash
# The README's main job: build the example collection with astrobase, ingest it into a
# basedir and serve it on localhost. Rebuilds only what is missing. PORT=5006 by default.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
py=.venv/bin/python
demo=${LCPANEL_DEMO_DIR:-demo}
if [ ! -f "$demo/collection/lclist-catalog.pkl" ]; then
  echo "demo: building the example collection (astrobase period finding and checkplots; a few minutes on 2 cores)"
  rm -rf "$demo/collection"
  $py examples/make_collection.py "$demo/collection" --nobjects "${LCPANEL_DEMO_NOBJECTS:-300}" --workers 2
fi
if [ ! -f "$demo/basedir/lcc-collections.sqlite" ]; then
  rm -rf "$demo/basedir"
  .venv/bin/lcpanel init "$demo/basedir"
  # --cache-lightcurves: parsed copies of the light curves, for fast exports
  .venv/bin/lcpanel add-collection "$demo/basedir" "$demo/collection" --id demo_field --cache-lightcurves
fi
exec .venv/bin/lcpanel serve "$demo/basedir" --address 127.0.0.1 --port "${PORT:-5006}" "$@"
