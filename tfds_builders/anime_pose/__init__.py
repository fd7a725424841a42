"""anime_pose dataset."""
