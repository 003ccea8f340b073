# The Credence worker image: `docker build -t credence:0.1.0 .`
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml topics.yaml rules.yaml ./
COPY scoring/ scoring/
COPY streams/ streams/
RUN pip install . \
 && rm -rf scoring streams build *.egg-info \
 && useradd --system --uid 10001 --user-group --home-dir /app --no-create-home credence \
 && mkdir -p /var/lib/credence \
 && chown credence:credence /var/lib/credence

# `pip install .` puts the packages in site-packages, away from topics.yaml and rules.yaml
# (an operator's catalogue: mount it and point CREDENCE_RULES_FILE at it)
ENV CREDENCE_TOPICS_FILE=/app/topics.yaml \
    CREDENCE_RULES_FILE=/app/rules.yaml \
    CREDENCE_DATA_DIR=/var/lib/credence \
    CREDENCE_WEB_HOST=0.0.0.0 \
    CREDENCE_WEB_PORT=6066

USER 10001:10001
VOLUME ["/var/lib/credence"]
EXPOSE 6066
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; h = os.environ['CREDENCE_WEB_HOST'].replace('0.0.0.0', '127.0.0.1'); urllib.request.urlopen('http://%s:%s/metrics' % (h, os.environ['CREDENCE_WEB_PORT']), timeout=4)"]
CMD ["credence", "worker"]
