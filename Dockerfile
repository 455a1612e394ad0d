# The talent-journey image: the `talent` console script on Python 3.11, run as a non-root user.
# One image for every role; the command picks it: `talent api` (the default), `talent worker`,
# `talent migrate`. See docker-compose.yml for the whole stack.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# Only what the package is built from (the packages of pyproject's [tool.setuptools.packages.find]):
# never .venv, nor .data (it may hold a development vault key). .dockerignore keeps them out of the
# build context as well.
COPY pyproject.toml README.md ./
COPY domain/ domain/
COPY workflows/ workflows/
COPY activities/ activities/
COPY store/ store/
COPY infra/ infra/
COPY service/ service/
COPY workers/ workers/
COPY api/ api/
COPY cli/ cli/
RUN pip install --root-user-action=ignore . \
    && rm -rf build ./*.egg-info \
    && useradd --create-home --uid 10001 talent \
    && mkdir -p /var/lib/talent/ledger && chown talent /var/lib/talent/ledger
# Programme definitions, e.g. `talent programme simulate examples/talent-ny-leder.yaml` (from /app).
COPY examples/ examples/

USER talent
ENV TALENT_LOG_FORMAT=json \
    TALENT_DATA_DIR=/home/talent/.data \
    TALENT_EXAMPLES_DIR=/app/examples \
    TALENT_API_HOST=0.0.0.0 \
    TALENT_API_PORT=8000

EXPOSE 8000
CMD ["talent", "api"]
