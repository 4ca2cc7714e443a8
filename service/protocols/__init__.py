"""Standard inference protocols (Open Inference Protocol v2, TF Serving / KServe v1): parsing
and encoding only. The routes (``service.api.v2``, ``service.api.v1``) run every image through
``service.analysis``, the same path as ``/predict`` and ``/explain``."""
