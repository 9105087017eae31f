import { readFileSync } from 'node:fs';
import type { HttpBindings } from '@hono/node-server';
import type { Hono } from 'hono';

/** The live page's files: plain HTML, CSS and JavaScript in web/, served as they are. */
const FILES = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/page.js': ['page.js', 'text/javascript; charset=utf-8'],
  '/page.css': ['page.css', 'text/css; charset=utf-8'],
} as const;

/**
 * The page renders what runs print, which nobody vetted: it only ever sets text, and this
 * policy forbids any script or connection but the gateway's own. The URL may hold a read
 * token, so it is never sent on as a referrer.
 */
const HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-cache',
};

export function addPage(app: Hono<{ Bindings: HttpBindings }>): void {
  // The same path from src/gateway and dist/gateway.
  const root = new URL('../../web/', import.meta.url);
  for (const [route, [file, type]] of Object.entries(FILES)) {
    const body = readFileSync(new URL(file, root), 'utf8');
    app.get(route, (c) => c.body(body, 200, { ...HEADERS, 'content-type': type }));
  }
}
