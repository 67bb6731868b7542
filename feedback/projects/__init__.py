"""Projects and their members: create, edit (the rubric, guidelines, LLM and review-queue settings),
archive; add, change the role of and remove members. Three doors (pages, API, commands) call the
same services in ``service.py``."""
