import { createConnection, createServer, type Socket } from 'node:net';
import { once } from 'node:events';

/**
 * A TCP relay in front of a Redis: one worker's own link to it, which a test can cut (nothing
 * goes either way, and the connections stay open, as in a network partition) and restore.
 */
export interface RedisLink {
  readonly url: string;
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startRedisLink(redisUrl: string): Promise<RedisLink> {
  const target = new URL(redisUrl);
  const sockets = new Set<Socket>();
  let cut = false;
  const server = createServer((client) => {
    const upstream = createConnection(Number(target.port), target.hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
    if (cut) for (const socket of [client, upstream]) socket.pause();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port to listen on');
  return {
    url: `redis://127.0.0.1:${address.port}`,
    cut: () => {
      cut = true;
      for (const socket of sockets) socket.pause();
    },
    restore: () => {
      cut = false;
      for (const socket of sockets) socket.resume();
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
