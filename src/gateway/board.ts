import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { HonoAdapter } from '@bull-board/hono';
import { serveStatic } from '@hono/node-server/serve-static';
import type { Queue } from 'bullmq';
import type { Hono } from 'hono';

/** Bull Board for the queue, as a Hono app to mount at `path` (the full path it is served at). */
export function boardApp(queue: Queue, path: string): Hono {
  const adapter = new HonoAdapter(serveStatic);
  adapter.setBasePath(path);
  createBullBoard({ queues: [new BullMQAdapter(queue)], serverAdapter: adapter });
  return adapter.registerPlugin();
}
