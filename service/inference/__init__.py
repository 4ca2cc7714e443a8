"""Model artifact, preprocessing, compiled inference and Grad-CAM."""
