"""Trials: draft a few variants (prompt version, connection and model, temperature, image) on a small
set of samples, kept apart from the project's drafts and its review queue, to choose one on evidence."""
