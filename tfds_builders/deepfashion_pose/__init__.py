"""deepfashion_pose dataset."""
