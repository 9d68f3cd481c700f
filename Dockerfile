# The fieldvisit app image: one image for web (gunicorn), worker, beat and the migrate job.
FROM python:3.11.9-slim-bookworm

# tini reaps the worker's children and forwards signals so `docker stop` lets Celery
# finish the task in hand. No fonts: the server renders nothing to images or PDFs (charts
# are SVG and briefings HTML mail, drawn by the reader's browser or mail app with its own
# fonts; XLSX names fonts without embedding them). tests/deploy/test_compose.py fails if
# a rendering library is imported, the day one needs a CJK font here.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed uid so the named volume's ownership is stable across rebuilds.
RUN groupadd --system --gid 10001 fieldvisit \
    && useradd --system --uid 10001 --gid fieldvisit --home-dir /app --shell /usr/sbin/nologin fieldvisit

WORKDIR /app
# Dependencies first: this layer is reused while only the code changes. The lock
# (scripts/lock): requirements.lock pins every runtime package with the sha256 of its
# file, so every build installs the same files or fails; constraints.txt pins pip.
COPY pyproject.toml constraints.txt requirements.lock ./
RUN pip install --constraint constraints.txt pip \
    && pip install --require-hashes --no-deps -r requirements.lock
COPY . .
RUN pip install --no-deps . \
    && rm -rf build ./*.egg-info \
    && mkdir -p /data \
    && chown -R fieldvisit:fieldvisit /data

# The code runs from /app, not site-packages: the PWA (pwa/) and the Alembic migrations
# (migrations/) sit next to the packages and are found relative to config/settings.py.
ENV PYTHONPATH=/app \
    DATA_DIR=/data \
    FIELDVISIT_ENV=production

USER fieldvisit:fieldvisit
VOLUME ["/data"]
EXPOSE 8000

# The web's check; docker-compose.yml gives worker and beat their own.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]

ENTRYPOINT ["tini", "--"]
CMD ["fieldvisit", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "4"]
