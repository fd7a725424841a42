"""market1501_pose dataset."""
