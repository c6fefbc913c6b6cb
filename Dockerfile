# One image for the coordinator and the workers: `aelle serve` or `aelle worker` by command.
FROM python:3.11-slim

# torch==2.13.0 is pinned in pyproject.toml; this index decides its build (CUDA for GPU hosts;
# https://download.pytorch.org/whl/cpu for a smaller CPU-only image).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY aelle ./aelle
COPY tasks ./tasks
COPY workers ./workers
COPY service ./service
RUN pip install --extra-index-url "${TORCH_INDEX_URL}" . \
    && useradd --create-home aelle
USER aelle

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --retries=6 \
    CMD python -c "import httpx, sys; sys.exit(httpx.get('http://127.0.0.1:8000/api/v1/health').status_code != 200)" || exit 1
ENTRYPOINT ["aelle"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
