/**
 * A `ws` WebSocket class for `WardenClient`'s `WebSocket` option that ignores the URL it is
 * given and dials one of several nodes instead, a different one on each (re)connect. The
 * client's own machinery — reconnect with backoff, subscriptions resumed from their last seq,
 * remote-worker heartbeats retried — then moves a client from a dead node to a live one, as a
 * load balancer in front of the nodes would.
 *
 * The order is a random rotation: after a refused connect the next attempt tries the next node,
 * so a dead node costs one failed attempt, not a streak of them.
 */
import WebSocket from 'ws';

import { WardenClient, type WardenClientOptions } from '../../src/client/index.ts';

export interface FailoverSocket {
  readonly WebSocket: typeof WebSocket;
  /** Every URL dialed so far, in order (tests check clients really moved between nodes). */
  readonly dialed: string[];
}

export function failoverSocket(urls: readonly string[]): FailoverSocket {
  if (urls.length === 0) throw new Error('failoverSocket needs at least one URL');
  let next = Math.floor(Math.random() * urls.length);
  const dialed: string[] = [];
  class FailoverWebSocket extends WebSocket {
    constructor(_address: string | URL, options?: WebSocket.ClientOptions) {
      const url = urls[next % urls.length]!;
      next = (next + 1) % urls.length;
      dialed.push(url);
      super(url, options);
    }
  }
  // Its constructor takes (address, options), the only form Connection uses.
  return { WebSocket: FailoverWebSocket as unknown as typeof WebSocket, dialed };
}

/** Client options that fail over between `urls` (the `url` is only used in messages). */
export function failoverOptions(
  urls: readonly string[],
  token: string,
  name: string,
): WardenClientOptions & { readonly socket: FailoverSocket } {
  const socket = failoverSocket(urls);
  return {
    url: urls[0]!,
    token,
    client: { name, version: '1' },
    reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
    WebSocket: socket.WebSocket,
    socket,
  };
}

/** `WardenClient.connect` through the failover socket, retrying while the node it dials is down. */
export async function connectFailover(
  urls: readonly string[],
  token: string,
  name: string,
  timeoutMs = 60_000,
): Promise<{ client: WardenClient; socket: FailoverSocket }> {
  const { socket, ...options } = failoverOptions(urls, token, name);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return { client: await WardenClient.connect(options), socket };
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
