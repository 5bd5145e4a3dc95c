"""How results look: terminal tables, JSON, CSV, markdown and HTML (``tables``), altair charts
(``charts``). Nothing here computes a statistic."""
