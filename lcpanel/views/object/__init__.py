"""The parts of the object page (:mod:`lcpanel.views.object_page` composes them):
``context`` (what the parts share), ``record`` (header), ``periodograms`` (the
checkplot's periodograms), ``fold`` (phase fold and period lists), ``review`` (review
form, comments, history) and ``style`` (sizes, CSS, small helpers)."""
