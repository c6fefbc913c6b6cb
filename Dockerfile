# One image for the coordinator and the workers (`aelle serve` or `aelle worker` by command),
# in two builds of torch: `--target cpu` and `--target cuda` (the last stage, the default);
# `--target dashboard` is optuna-dashboard on the Optuna release the image holds. docs/deployment.md has the build
# arguments; in short:
#   BASE_IMAGE       any Debian-like image with Python 3.11 (docker/base-image.sh builds one
#                    from Debian's archive where no registry is reachable)
#   TORCH_INDEX_URL  an extra index for torch (cpu: PyTorch's CPU index; cuda: none, PyPI's
#                    Linux wheel of torch 2.13.0 is the CUDA build); empty: none
#   WHEEL_DIR        a directory in the build context whose wheels pip prefers (docker/local)
#   CA_BUNDLE        a PEM file in the build context that pip trusts, for TLS-inspecting networks
#   PIP_INDEX_URL, PIP_EXTRA_INDEX_URL   another package index
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS runtime
ENV PYTHONUNBUFFERED=1 PATH=/opt/aelle/bin:$PATH
RUN useradd --create-home --uid 10001 aelle
WORKDIR /home/aelle

# ---- the pinned torch and the other dependencies, read from pyproject.toml: a change elsewhere
# in that file (tools, dev extras) yields the same files and keeps the cached layers below
FROM runtime AS requirements
COPY pyproject.toml /src/
RUN mkdir /requirements && cd /requirements \
    && python3 -c "import tomllib; print('\n'.join(tomllib.load(open('/src/pyproject.toml', 'rb'))['project']['dependencies']))" > all.txt \
    && grep '^torch' all.txt > torch.txt && grep -v '^torch' all.txt > rest.txt && rm all.txt

# ---- the virtual environment at /opt/aelle: dependencies first, so that a change to the code
# reuses the cached layer of torch and the rest
FROM runtime AS build
ARG WHEEL_DIR=docker/local
ARG CA_BUNDLE=
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_FIND_LINKS=/tmp/wheels
COPY ${WHEEL_DIR} /tmp/wheels/
# A build without BuildKit cannot copy a file only when it is named: without CA_BUNDLE a file
# that is always there stands in, and is not used.
COPY ${CA_BUNDLE:-docker/local/README.md} /tmp/ca-bundle.pem
RUN if [ -n "$CA_BUNDLE" ]; then echo "export PIP_CERT=/tmp/ca-bundle.pem" > /tmp/pip-env; \
    else : > /tmp/pip-env; fi \
    && python3 -m venv /opt/aelle \
    && . /tmp/pip-env && /opt/aelle/bin/pip install --quiet --upgrade pip
COPY --from=requirements /requirements /tmp/requirements

FROM build AS build-cpu
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN . /tmp/pip-env && /opt/aelle/bin/pip install ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} \
        -r /tmp/requirements/torch.txt -r /tmp/requirements/rest.txt \
    && /opt/aelle/bin/python -c "import torch; assert not torch.version.cuda, torch.__version__"
COPY pyproject.toml README.md /src/
COPY aelle /src/aelle
COPY tasks /src/tasks
COPY workers /src/workers
COPY service /src/service
RUN . /tmp/pip-env && /opt/aelle/bin/pip install --no-deps /src \
    && /opt/aelle/bin/pip freeze > /opt/aelle/requirements.lock

# ---- the images. No HEALTHCHECK here: a worker serves nothing; the coordinator's is in
# docker-compose.yml (and its probes in deploy/k8s/). The CPU stages come first: a build
# without BuildKit builds every stage before its target.
FROM runtime AS cpu
COPY --from=build-cpu /opt/aelle /opt/aelle
USER aelle
# the coordinator's trained networks (AELLE_ARTIFACT_DIR in docker-compose.yml): a volume
# mounted here takes this directory's owner, the non-root user
RUN mkdir -p /home/aelle/artifacts
EXPOSE 8000
ENTRYPOINT ["aelle"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]

# ---- optuna-dashboard on the database, with the Optuna and the drivers of build-cpu
FROM build AS build-dashboard
ARG OPTUNA_DASHBOARD_VERSION=0.21.0
COPY --from=build-cpu /opt/aelle/requirements.lock /tmp/requirements.lock
RUN grep -iE '^(optuna|sqlalchemy|psycopg|psycopg-binary)==' /tmp/requirements.lock > /tmp/pins.txt \
    && python3 -m venv /opt/dashboard \
    && . /tmp/pip-env && /opt/dashboard/bin/pip install --quiet --upgrade pip \
    && /opt/dashboard/bin/pip install -r /tmp/pins.txt "optuna-dashboard==${OPTUNA_DASHBOARD_VERSION}"

FROM runtime AS dashboard
COPY --from=build-dashboard /opt/dashboard /opt/dashboard
USER aelle
EXPOSE 8080
ENTRYPOINT ["/opt/dashboard/bin/optuna-dashboard", "--host", "0.0.0.0", "--port", "8080"]

FROM build AS build-cuda
ARG TORCH_INDEX_URL=
# a CPU build of torch among the local wheels would win over the index's CUDA build
RUN rm -f /tmp/wheels/torch-*+cpu-*.whl \
    && . /tmp/pip-env && /opt/aelle/bin/pip install ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} \
        -r /tmp/requirements/torch.txt -r /tmp/requirements/rest.txt \
    && /opt/aelle/bin/python -c "import torch; assert torch.version.cuda, torch.__version__"
COPY pyproject.toml README.md /src/
COPY aelle /src/aelle
COPY tasks /src/tasks
COPY workers /src/workers
COPY service /src/service
RUN . /tmp/pip-env && /opt/aelle/bin/pip install --no-deps /src \
    && /opt/aelle/bin/pip freeze > /opt/aelle/requirements.lock

FROM runtime AS cuda
COPY --from=build-cuda /opt/aelle /opt/aelle
USER aelle
# the coordinator's trained networks (AELLE_ARTIFACT_DIR in docker-compose.yml): a volume
# mounted here takes this directory's owner, the non-root user
RUN mkdir -p /home/aelle/artifacts
EXPOSE 8000
ENTRYPOINT ["aelle"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
