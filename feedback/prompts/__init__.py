"""A project's prompt versions: pages, API and their view models (the writes are in
feedback.drafting.versions, which project creation uses too)."""
