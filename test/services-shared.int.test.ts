/**
 * The service registry lives in the store (issue 6, defect 5): every process sees every
 * worker, and a worker that died without unregistering shows as unhealthy.
 */
import { hostname } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { Kernel } from '../src/kernel/index.ts';
import { LOCAL_NAMESPACE } from '../src/queue/owner-liveness.ts';
import { Worker } from '../src/runtime/index.ts';
import { openSqliteStore } from '../src/store/index.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

describe('shared service registry', () => {
  afterAll(removeTempDirs);

  it('a worker registered by one process is listed by another, with events', async () => {
    const file = join(tempDir(), 'svc.db');
    const a = await openSqliteStore({ file });
    const b = await openSqliteStore({ file });
    try {
      const ka = new Kernel({ store: a });
      const kb = new Kernel({ store: b });
      const worker = new Worker({ kernel: ka, heartbeat: 'timer' });
      await worker.start();
      expect((await kb.status()).services).toEqual([
        { name: worker.id, type: 'worker', health: 'healthy', load: 0 },
      ]);
      // A registration whose owner process is gone (killed without unregistering).
      await kb.registerService({
        name: 'ghost',
        type: 'worker',
        capabilities: ['agent_step'],
        maxConcurrency: 1,
        health: 'healthy',
        owner: `${hostname()}/999999999/x/${LOCAL_NAMESPACE}`,
      });
      kb.services.unregister('ghost'); // forget the local copy: only the store knows it now
      const seen = await ka.listServices();
      expect(seen.find((s) => s.name === 'ghost')?.health).toBe('unhealthy');
      await worker.stop();
      expect((await kb.listServices()).map((s) => s.name)).toEqual(['ghost']);
      const system = (await b.getSessionByKey('system'))!;
      const types = (await b.readEvents({ sessionId: system.id })).map((e) => e.type);
      expect(types.filter((t) => t.startsWith('service.'))).toEqual([
        'service.registered',
        'service.registered',
        'service.unregistered',
      ]);
      ka.close();
      kb.close();
    } finally {
      await a.close();
      await b.close();
    }
  });
});
