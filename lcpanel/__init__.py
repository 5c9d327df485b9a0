"""lcpanel: a light-curve collection server and desktop explorer for time-domain astronomy.

The package is layered: ``core`` works on plain data (catalogs, sky index, datasets,
products) and never imports Panel; ``plugins`` holds the built-in plugins, registered
through the same ``lcpanel`` entry-point group as third-party ones; ``views`` is the
Panel UI. :class:`lcpanel.app.App` ties them together for one process.
"""

__version__ = "0.1.0"
