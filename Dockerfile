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

# Run: the built worker, its production dependencies (the claude CLI among them), as a
# non-root user, under tini so signals reach npm start and through it the worker (the start
# script execs node, so npm's SIGTERM lands on the worker itself).
FROM node:20-bookworm-slim
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini git ca-certificates ripgrep \
  && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    WORK_DIR=/workspace \
    HEALTH_PORT=8080
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json /app/package-lock.json ./
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
RUN mkdir -p /workspace && chown node:node /workspace
USER node
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s \
  CMD node -e "fetch('http://127.0.0.1:8080/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["npm", "start"]
