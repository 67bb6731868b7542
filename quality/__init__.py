"""Quality figures: how good the drafts, the reviews and the model under study are."""
