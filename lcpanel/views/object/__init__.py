"""The parts of the object page (:mod:`lcpanel.views.object_page` composes them):
``context`` (what the parts share), ``record`` (header), ``periodograms`` (the
checkplot's periodograms), ``fold`` (phase fold, ×2 / ÷2, error bars, Fourier fit, period
lists), ``saved`` (saved periods with a shared epoch), ``features`` (variability
features on request), ``review`` (review form, comments, history) and ``style`` (sizes,
CSS, small helpers)."""
