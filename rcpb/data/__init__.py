"""Dataset files (SPEC 2.1), validation, importers, preprocessing, splits and the
ground-truth simulator."""
