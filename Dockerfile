# syntax=docker/dockerfile:1.7
# One image for every loraforge process: `docker run IMAGE api|worker|bot|all` (default: all). Any other
# argument runs that CLI command, e.g. `docker run IMAGE register-commands --guild 123`.
ARG NODE_IMAGE=node:20.19-bookworm-slim

# ---- build: install everything, compile TypeScript and bundle the CLI, drop the dev dependencies
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts, as package.json's allowScripts says for npm 11 (this image's npm 10 ignores that field):
# onnxruntime-node ships its CPU binaries in the package and its script would only fetch the CUDA provider, and
# the root `prepare` build needs the sources copied below.
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

# ---- runtime: compiled code, production dependencies, an unprivileged user
FROM ${NODE_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    LORAFORGE_DATA_DIR=/data \
    LORAFORGE_HOST=0.0.0.0 \
    LORAFORGE_LOG_FORMAT=json
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY config ./config
COPY assets ./assets
COPY --chmod=755 docker/entrypoint.sh /usr/local/bin/loraforge-entrypoint
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080
# api/all: GET /healthz; worker: its Redis answers; bot: its heartbeat file is fresh (it is connected to Discord)
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 CMD ["node", "/app/bin/loraforge.js", "healthcheck"]
# tini forwards signals (SIGTERM lets a worker finish or hand back its merge) and reaps children
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/loraforge-entrypoint"]
CMD ["all"]
