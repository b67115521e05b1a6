# dunwell: one image for `dunwell api`, `dunwell worker` and `dunwell migrate`.
FROM python:3.11-slim

ARG UV_VERSION=0.13.9

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3

RUN pip install "uv==${UV_VERSION}"

WORKDIR /app

# Dependencies first, from the lock file only, so code changes reuse this layer.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

# Then the project itself.
COPY . .
RUN uv sync --frozen --no-dev

# Run as an unprivileged user; the code stays owned by root (read-only for the app).
RUN useradd --system --uid 10001 --create-home --home-dir /home/dunwell dunwell \
    && mkdir -p /var/lib/dunwell \
    && chown dunwell:dunwell /var/lib/dunwell

ENV PATH="/app/.venv/bin:${PATH}" \
    DUNWELL_HOME=/var/lib/dunwell \
    DUNWELL_API_HOST=0.0.0.0 \
    DUNWELL_API_PORT=8000

USER dunwell
EXPOSE 8000

CMD ["dunwell", "api"]
