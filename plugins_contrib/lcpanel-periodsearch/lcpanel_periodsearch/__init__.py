"""lcpanel-periodsearch: an example third-party lcpanel plugin.

It adds two search types and two product builders, with no change to lcpanel itself:

- ``period`` (:class:`lcpanel_periodsearch.search.PeriodSearch`): objects whose adopted
  period (the catalog's varinfo) or best period-finding period lies in a range, with an
  optional minimum amplitude;
- ``box`` (:class:`lcpanel_periodsearch.search.BoxSearch`): objects in an RA/Dec box,
  RA ranges may wrap through 0/360;
- ``periodfinding_csv`` (:class:`lcpanel_periodsearch.products.PeriodfindingCSV`): one CSV
  row per object per period-finding method;
- ``phased_pdf`` (:class:`lcpanel_periodsearch.products.PhasedPDF`): a PDF with one page of
  phased light curves per object.

The hooks are in :mod:`lcpanel_periodsearch.plugin`, the module the ``lcpanel`` entry point
names.
"""

__version__ = "0.1.0"
