"""Saved programs: the on-disk format of a trained program (`saved`) and of its parts (`parts`)."""
