# Décroché — slim, non-root image running `decroche serve`.
# Give it a PostgreSQL with DATABASE_URL (see compose.yaml); without one it starts an
# embedded PostgreSQL in /data (fine for a trial, not for production).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DECROCHE_CONFIG=/app/config/decroche.toml \
    DECROCHE_DATA_DIR=/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
COPY webhooks ./webhooks
COPY campaigns ./campaigns
COPY config ./config
RUN pip install . \
 && useradd --system --create-home --home-dir /home/decroche decroche \
 && mkdir -p /data && chown decroche /data

USER decroche
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"
CMD ["decroche", "serve", "--host", "0.0.0.0", "--port", "8080", "--workers", "2"]
