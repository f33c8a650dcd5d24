"""SLAM-level evaluation: homography and pose AUC, track quality, against the reference."""
