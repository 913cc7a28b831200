"""Figure functions: each takes the results table, a split seed (and a training fraction) and
returns ``(figure, data, headline)``; analysis.figures writes them as PNG, PDF and CSV."""
