"""Batch scoring of whole archives (``cxr-score``): the service's decode -> gate -> model path
run over folder trees, locally or on a Ray cluster, with a resumable output and an HTML report."""
