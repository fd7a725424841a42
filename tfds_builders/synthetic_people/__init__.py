"""synthetic_people dataset."""
