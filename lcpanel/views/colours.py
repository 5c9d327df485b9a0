"""lcpanel's colours, for Panel pages (:mod:`.theme`) and for pages written as plain
Tornado handlers (:mod:`.search_types_page`), which must not import Panel: the app
registers every route at start-up, CLI commands included."""

ACCENT = "#1f5f8b"
ACCENT_DARK = "#17476a"
ACCENT_LIGHT = "#e8f0f6"
MUTED = "#5b6770"
DANGER = "#b3261e"
#: one colour per collection, in collection order (colour-blind friendly, Okabe-Ito based)
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#8c6d31", "#7b4f9d",
           "#c0392b", "#2c7873")
