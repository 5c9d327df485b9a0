"""Objects: one object's light curves, formats and exports, checkplots, finder charts and reviews."""
