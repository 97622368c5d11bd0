# Berth model server image (CPU). Multi-stage: install + compile, then a slim Node 20 runtime holding
# production dependencies only and only the linux-x64 CPU build of llama.cpp (not the ~620 MB of
# CUDA/Vulkan/ARM prebuilt binaries node-llama-cpp's optional packages bring). Runs as uid 10001.
#
#   podman build --format docker -t berth:cpu .            # --format docker keeps HEALTHCHECK (podman/buildah)
#   podman run -p 9000:9000 -v ./models:/models:ro berth:cpu   # serves /models/model.gguf
#   podman build --format docker --build-arg MODEL=models/gpt2.gguf -t berth:gpt2 .   # model baked in
#
# Build arguments:
#   BASE_IMAGE          Node 20 base for both stages (CI passes a locally made one: scripts/image/make-base.sh)
#   MODEL               path of a GGUF file inside the build context to bake in as /models/model.gguf
#   NPM_CONFIG_OFFLINE  true: install from the npm cache only (CI mounts the host's cache, see test/image)
#   NPM_CONFIG_CACHE    npm's cache directory inside the build stage
# `berth build` writes an equivalent image without any daemon (src/image); Dockerfile.cuda is the GPU variant.
ARG BASE_IMAGE=node:20-bookworm-slim

FROM ${BASE_IMAGE} AS build
WORKDIR /src
ARG NPM_CONFIG_CACHE=/root/.npm
ARG NPM_CONFIG_OFFLINE=false
COPY package.json package-lock.json ./
# --ignore-scripts: node-llama-cpp's postinstall only test-loads (or builds from source) the binary;
# the image uses its prebuilt binary as is, and no other production package has an install script.
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY src ./src
COPY scripts/image/prune-node-modules.mjs ./scripts/image/
# The same rules as `berth build` (src/image/prune.ts): production packages only (not even
# typescript, which `npm ci --omit=dev` keeps as node-llama-cpp's optional peer), the CPU llama.cpp
# binary only, no source maps, type declarations or llama.cpp source bundle.
RUN npm run build && node scripts/image/prune-node-modules.mjs --variant cpu
# The model (optional) and the home directory, staged for the runtime stage; node does the copying
# because a minimal base may have no cp or mkdir.
ARG MODEL=""
RUN --mount=type=bind,target=/context \
    node -e 'const fs = require("node:fs"); \
      fs.mkdirSync("/out/models", { recursive: true }); fs.mkdirSync("/out/home", { recursive: true }); \
      const model = process.env.MODEL; \
      if (model) fs.copyFileSync(require("node:path").join("/context", model), "/out/models/model.gguf");'

FROM ${BASE_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="berth" \
      org.opencontainers.image.description="Berth model server: llama.cpp (CPU) behind an OpenAI-compatible HTTP API" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/berth-dev/berth"
# UV_THREADPOOL_SIZE=1: the engine's setting (src/engine/process.ts); set here, `berth serve` runs as
# PID 1 itself instead of relaunching a child to get it.
ENV NODE_ENV=production \
    HOME=/home/berth \
    BERTH_HOME=/home/berth/.cache/berth \
    UV_THREADPOOL_SIZE=1
WORKDIR /app
# Root-owned and not writable by the server's user; dependencies first, they change least often.
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/bin ./bin
COPY --from=build /src/dist ./dist
COPY --from=build /out/models/ /models/
COPY --from=build --chown=10001:10001 /out/home/ /home/berth/
USER 10001:10001
EXPOSE 9000
# No curl in slim images: node asks /healthz itself.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9000/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Arguments given to `podman run IMAGE ...` are appended: a later --model or --port wins.
ENTRYPOINT ["node", "/app/bin/berth.js", "serve", "--host", "0.0.0.0", "--port", "9000", "--model", "/models/model.gguf"]
