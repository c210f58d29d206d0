# syntax=docker/dockerfile:1
# One image for the services; the command picks one:
#   docker run IMAGE serve intake|routing|notify|analytics|web
# Kubernetes runs it as `jembatan serve <service>` (deploy/k8s/base).
# Build: docker build -t jembatan/jembatan:0.1.0 .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:20-bookworm-slim

# ---- assets: the browser libraries the pages serve themselves (npm, no CDN) ----
FROM ${NODE_IMAGE} AS assets
WORKDIR /web
COPY services/web/package.json services/web/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

# ---- build: compilers, gRPC code generation, the virtualenv ----
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/jembatan
ENV PATH=/opt/jembatan/bin:$PATH
WORKDIR /src
# Dependencies first: this layer is reused until requirements.txt changes.
COPY requirements.txt ./
RUN pip install -r requirements.txt
COPY pyproject.toml ./
COPY proto ./proto
COPY jembatan ./jembatan
COPY services ./services
# The gRPC stubs, as `make proto` generates them, from the live contracts under
# proto/jembatan (proto/released holds the frozen copies for breaking-change checks).
RUN rm -rf jembatan/grpc_gen && mkdir -p jembatan/grpc_gen \
 && protos="$(find proto/jembatan -name '*.proto')" \
 && if [ -n "$protos" ]; then \
      python -m grpc_tools.protoc -Iproto --python_out=jembatan/grpc_gen \
        --pyi_out=jembatan/grpc_gen --grpc_python_out=jembatan/grpc_gen $protos; \
    fi \
 && python -m jembatan.grpc_stubs_fixup jembatan/grpc_gen \
 && pip install --no-deps . \
 && python -m compileall -q /opt/jembatan
COPY --from=assets /web/node_modules/leaflet/dist /opt/jembatan/web-assets/leaflet

# ---- runtime: the interpreter and the virtualenv only; no compilers, no sources ----
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 jembatan \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin jembatan \
 && mkdir -p /var/lib/jembatan \
 && chown 10001:10001 /var/lib/jembatan
COPY --from=build /opt/jembatan /opt/jembatan
ENV PATH=/opt/jembatan/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    JEMBATAN_HTTP_HOST=0.0.0.0 \
    JEMBATAN_DATA_DIR=/var/lib/jembatan \
    JEMBATAN_WEB_LEAFLET_DIR=/opt/jembatan/web-assets/leaflet
WORKDIR /var/lib/jembatan
# HTTP (with /metrics, /healthz, /readyz) and gRPC ports of intake, routing, notify, analytics;
# the pages (web) on 8080.
EXPOSE 8000 8001 8002 8003 8080 50051 50052 50053
# Numeric, so Kubernetes can verify runAsNonRoot without reading /etc/passwd.
USER 10001:10001
ENTRYPOINT ["jembatan"]
CMD ["serve", "intake"]
