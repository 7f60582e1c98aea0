/**
 * The compare-and-set rule of a run's row, shared by both adapters: an update names the version
 * it read and writes exactly the next one. A writer that kept the version (or skipped ahead)
 * would let a second writer holding the same read succeed too (the ABA problem), so the store
 * refuses it before anything is written.
 */
import { invalidParams } from '../core/params.ts';
import type { StoreOp } from './types.ts';

export function checkProcessUpdate(op: Extract<StoreOp, { op: 'process.update' }>): void {
  if (op.row.version === op.expectVersion + 1) return;
  throw invalidParams('Store.commit process.update', [
    {
      path: 'row.version',
      message: `must be expectVersion + 1 (${op.expectVersion + 1}), got ${op.row.version}: read the run again and write the next version`,
    },
  ]);
}
