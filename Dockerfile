# Slim runtime image: one uvicorn worker (TensorFlow already uses every core), non-root user,
# the shipped model baked in. Build: docker build -t cxr-service .
# Run: it listens on 0.0.0.0, so it needs API keys (a mounted CXR_API_KEYS_FILE) or, on purpose,
#   docker run -p 8000:8000 -e CXR_ALLOW_ANONYMOUS=true cxr-service
# A Prometheus in another container reaches /metrics with -e CXR_METRICS_ACCESS=open.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    CXR_MODEL_DIR=/app/models/cxr-vgg16-3class

RUN useradd --create-home --uid 10001 cxr
WORKDIR /app

COPY pyproject.toml README.md ./
COPY service ./service
RUN pip install --upgrade pip && pip install .
COPY models ./models

USER cxr
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=60s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2).status != 200)"
CMD ["python", "-m", "service", "--host", "0.0.0.0", "--port", "8000"]
