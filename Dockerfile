# The advisor's image, for deploy/watch.yaml and deploy/weekly-report.yaml:
#   docker build -t longhorn-backup-advisor:0.1.0 .
# (then push it where your cluster pulls from and set `image:` in the manifests).
FROM python:3.11-slim

WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY advisor ./advisor
# numba compiles the simulation kernels on first use; compiling them here, into a cache
# the read-only root filesystem keeps, spares every run that time.
ENV NUMBA_CACHE_DIR=/opt/numba-cache
RUN pip install --no-cache-dir . \
 && mkdir -p "$NUMBA_CACHE_DIR" \
 && advisor recommend --sample -o json > /dev/null \
 && chmod -R a+rX "$NUMBA_CACHE_DIR" \
 && rm -rf /src

WORKDIR /
# a user with no shell and no home; HOME and matplotlib's cache go to the /tmp emptyDir
USER 65532:65532
ENV HOME=/tmp MPLCONFIGDIR=/tmp/matplotlib PYTHONUNBUFFERED=1 \
    ADVISOR_STORE=/data/store
ENTRYPOINT ["advisor"]
