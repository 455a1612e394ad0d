# The talent-journey image: the `talent` console script on Python 3.11, run as a non-root user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# Only what the package is built from: never .venv, nor .data (it may hold a development vault key).
COPY pyproject.toml README.md ./
COPY domain/ domain/
COPY workflows/ workflows/
COPY activities/ activities/
COPY workers/ workers/
COPY api/ api/
COPY cli/ cli/
RUN pip install --root-user-action=ignore . \
    && rm -rf build ./*.egg-info \
    && useradd --create-home --uid 10001 talent

USER talent
ENV TALENT_LOG_FORMAT=json \
    TALENT_DATA_DIR=/home/talent/.data

CMD ["talent", "migrate"]
