/**
 * The layering of src/, checked on every `npm run lint`. Dependencies point one way:
 *   contract <- config, redis, executor <- isolation, workspace <- worker (events, sessions <- attempt <- runtime)
 *   contract, redis <- client <- gateway;  cli on top;  tools/ and bench/ use the product, never the reverse.
 * common/ is the floor: small helpers for every layer (and the tools), importing nothing of src/.
 */
const layer = (name, from, allowed) => ({
  name,
  severity: 'error',
  comment: `${from} may import only ${allowed.join(', ')}`,
  from: { path: `^src/${from}/` },
  to: {
    path: '^src/',
    pathNot: [`^src/${from}/`, '^src/common/', ...allowed.map((dir) => `^src/${dir}/`)],
  },
});

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
    {
      name: 'product-apart-from-its-tools',
      severity: 'error',
      comment: 'src/ is the product: it never imports the tests, the tools or the benchmarks',
      from: { path: '^src/' },
      to: { path: '^(test|tools|bench|scripts)/' },
    },
    {
      name: 'tools-use-the-public-entry',
      severity: 'error',
      comment:
        'tools/ use the product as its users do: through src/index.ts (and its common helpers)',
      from: { path: '^tools/' },
      to: { path: '^src/', pathNot: ['^src/index\\.ts$', '^src/common/'] },
    },
    {
      name: 'common',
      severity: 'error',
      comment: 'src/common may import nothing else of src/',
      from: { path: '^src/common/' },
      to: { path: '^src/', pathNot: '^src/common/' },
    },
    layer('contract', 'contract', []),
    layer('config', 'config', ['contract']),
    layer('executor', 'executor', ['contract']),
    layer('redis', 'redis', ['contract', 'config']),
    layer('isolation', 'isolation', ['contract', 'executor']),
    layer('workspace', 'workspace', ['contract']),
    layer('client', 'client', ['contract', 'redis']),
    layer('gateway', 'gateway', ['contract', 'redis', 'client']),
    layer('watchdog', 'watchdog', ['contract', 'config', 'executor', 'isolation']),
    layer('worker-events', 'worker/events', ['contract']),
    layer('worker-sessions', 'worker/sessions', ['contract', 'redis', 'executor']),
    layer('worker-attempt', 'worker/attempt', [
      'contract',
      'config',
      'redis',
      'executor',
      'isolation',
      'workspace',
      'worker/events',
      'worker/sessions',
    ]),
    layer('worker-runtime', 'worker/runtime', [
      'contract',
      'config',
      'redis',
      'executor',
      'isolation',
      'watchdog',
      'workspace',
      'worker/attempt',
      'worker/events',
      'worker/sessions',
    ]),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
