# syntax=docker/dockerfile:1

# Build: npm ci and npm run build, as CI does. Install scripts are skipped: the claude CLI's
# only copies its native binary over a placeholder, and claudebox runs that binary straight
# from its platform package (one 380 MB copy in the image, not two).
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
RUN npm ci --ignore-scripts
COPY src ./src
RUN npm run build && npm prune --omit=dev --ignore-scripts

# Run: the built worker and its production dependencies (the claude CLI among them), under
# tini so signals reach npm start and through it the worker (the start script execs node, so
# npm's SIGTERM lands on the worker itself). The worker runs as root so that it can give every
# run a uid of its own (setpriv, from util-linux); the code is root's and read-only to runs.
# bubblewrap adds namespaces where the container may make them (not under Docker's default
# seccomp profile: the worker then finds out at start and isolates by uid alone).
FROM node:20-bookworm-slim
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini git ca-certificates ripgrep bubblewrap \
  && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    WORK_DIR=/workspace \
    RUN_ISOLATION=required \
    RUN_ROOT=/var/lib/claudebox \
    HEALTH_PORT=8080 \
    HEALTH_HOST=0.0.0.0
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The gateway's live page (claudebox serve), served as it is.
COPY web ./web
RUN mkdir -p /workspace /var/lib/claudebox && chmod 0711 /workspace /var/lib/claudebox
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s \
  CMD node -e "fetch('http://127.0.0.1:8080/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["npm", "start"]
