"""Plain-data core of lcpanel: catalogs, sky index, search contracts, datasets, products.

Nothing in this package imports Panel or Bokeh.
"""
